"""Model factory (a lookup delegating to ``smp.create_model``) and the checkpoint contract.

Checkpoint contract (DESIGN.md): a dict loadable with ``torch.load(path, weights_only=True)``::

    {"format": "segpipe", "format_version": 1,
     "model_info": ModelInfo.to_dict(),      # arch, encoder, classes, mode, size, mean/std, names...
     "state_dict": {...},                    # model weights (CPU tensors)
     "train_state": {...} | None,            # epoch, optimizer, scheduler, scaler, rng, best metric
     "options": {...} | None}                # the resolved TrainOptions (plain types)

A bare ``state_dict`` (what older scripts saved) still loads when the architecture and encoder
are named (``--arch``, ``--encoder``; defaults Unet / efficientnet-b0 as the original tool used);
the class count is read from the segmentation head.
"""

from __future__ import annotations

import contextlib
import pickle
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from segpipe.errors import CheckpointError, ConfigError, close_matches, shorten
from segpipe.modelinfo import IMAGENET_MEAN, IMAGENET_STD, ModelInfo
from segpipe.utils import atomic_path

CHECKPOINT_FORMAT = "segpipe"
CHECKPOINT_VERSION = 1
DEFAULT_ARCH = "Unet"
DEFAULT_ENCODER = "efficientnet-b0"


def _smp():
    import segmentation_models_pytorch as smp

    return smp


def architectures() -> dict[str, str]:
    """lower-case name -> canonical smp class name (``unet`` -> ``Unet``)."""
    smp = _smp()
    return {k: v.__name__ for k, v in smp.MODEL_ARCHITECTURES_MAPPING.items()}


def resolve_arch(name: str) -> str:
    """Canonical smp architecture name; one-line error listing close matches."""
    archs = architectures()
    key = name.strip().lower()
    if key in archs:
        return archs[key]
    canon = sorted(archs.values())
    raise ConfigError(
        f"unknown architecture {name!r}{close_matches(name, canon) or '; valid: ' + ', '.join(canon)}"
    )


def _timm():
    import timm

    return timm


def check_encoder(name: str) -> str:
    """The encoder name if smp can build it; one-line error listing close matches otherwise.

    smp's own encoders (``resnet18``, ``efficientnet-b0``, ``mit_b0``...) and every timm model as a
    universal encoder, ``tu-<timm name>`` (optionally ``tu-<name>.<pretrained tag>``), checked
    against timm's model list.
    """
    if name.startswith("tu-"):
        timm = _timm()
        base = name[3:].split(".", 1)[0]
        if base and timm.is_model(base):
            return name
        hint = close_matches(name, [f"tu-{n}" for n in timm.list_models()])
        raise ConfigError(
            f"unknown timm encoder {name!r}: timm {timm.__version__} has no model {base!r}"
            f"{hint or '; see timm.list_models() for the names'}"
        )
    names = _smp().encoders.get_encoder_names()
    if name in names:
        return name
    hint = close_matches(name, names)
    if not hint and _timm().is_model(name.split(".", 1)[0]):
        hint = f"; timm has it: use tu-{name}"
    hint = hint or f"; {len(names)} smp encoders exist (see smp's encoder list), or any timm model as tu-NAME"
    raise ConfigError(f"unknown encoder {name!r}{hint}")


def check_combination(arch: str, encoder: str) -> None:
    """One-line error for the architecture/encoder pairs smp refuses to build (before it tries)."""
    if arch == "DPT" and not encoder.startswith("tu-"):
        raise ConfigError(
            f"DPT/{encoder}: smp builds DPT only on timm encoders; use a tu- encoder "
            "(e.g. --encoder tu-vit_small_patch16_224 or tu-convnext_atto), or another "
            f"architecture (e.g. Unet, FPN) with {encoder}"
        )
    if arch in ("UnetPlusPlus", "Linknet") and encoder.startswith("mit_b"):
        raise ConfigError(
            f"{arch}/{encoder}: smp does not build {arch} on Mix Transformer (mit_b*) encoders; use "
            f"{encoder} with Unet, FPN or Segformer, or {arch} with another encoder (e.g. resnet18)"
        )


def _build_error(arch: str, encoder: str, exc: BaseException) -> ConfigError:
    """smp's refusal of a combination it cannot build, as one line with what to use instead."""
    first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
    hint = ""
    if "downsampling pattern" in first:
        hint = (
            f"; {encoder} is a transformer without a feature pyramid: use it with DPT, or a "
            "hierarchical encoder (resnet, convnext, mit_b*) with " + arch
        )
    return ConfigError(f"{arch}/{encoder}: smp cannot build this combination ({first[:200]}){hint}")


def preprocessing_params(
    encoder: str, weights: str | Path | None = None
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) for the encoder: those of its named pretrained weights (``imagenet``...), else
    ImageNet's. smp reads a named weight's settings from the hub, so this only asks for them when
    such weights are used (they were just downloaded and are cached); random init or a weights
    file never touches the network.
    """
    name = None if weights is None else str(weights)
    if name is None or name.lower() in ("", "none", "null") or Path(name).suffix or Path(name).exists():
        if encoder.startswith("tu-"):
            try:
                import timm

                cfg = timm.models.get_pretrained_cfg(encoder[3:])
                if cfg is not None and cfg.mean and cfg.std:
                    return tuple(float(v) for v in cfg.mean), tuple(float(v) for v in cfg.std)
            except Exception:
                pass
        return IMAGENET_MEAN, IMAGENET_STD
    try:
        params = _smp().encoders.get_preprocessing_params(encoder, pretrained=name)
        return tuple(float(v) for v in params["mean"]), tuple(float(v) for v in params["std"])
    except Exception:
        return IMAGENET_MEAN, IMAGENET_STD


def _is_offline_error(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    needles = (
        "url",
        "connect",
        "network",
        "resolve",
        "offline",
        "timed out",
        "timeout",
        "http",
        "hub",
        "ssl",
        "local cache",
    )
    return any(n in text for n in needles) or isinstance(exc, OSError)


def hub_unreachable(timeout: float = 3.0) -> str | None:
    """Why the Hugging Face hub (where smp and timm keep their weights) cannot be reached, or None.

    ``HF_HUB_OFFLINE`` set, or one TCP connection to the hub's host that fails within ``timeout``
    seconds (skipped when a proxy is configured: then only the download can tell).
    """
    import os
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return "HF_HUB_OFFLINE is set"
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    url = urlparse(endpoint)
    host, port = url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as e:
        return f"{host}:{port} unreachable: {e.strerror or type(e).__name__}"
    return None


@contextlib.contextmanager
def _hub_offline(offline: bool) -> Iterator[None]:
    """huggingface_hub in offline mode for the block: cached weights load, nothing is retried."""
    if not offline:
        yield
        return
    from huggingface_hub import constants

    before = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = before


def create_model(info: ModelInfo, encoder_weights: str | Path | None = None) -> nn.Module:
    """Build the smp model ``info`` describes.

    ``encoder_weights``: ``None``/``"none"`` (random init), a name smp knows (``imagenet``...; for a
    ``tu-`` encoder any name means timm's pretrained weights, whose tag the encoder name may give:
    ``tu-convnext_atto.d2_in1k``), or a path to a file holding the encoder's state_dict. The hub is
    checked once before a download: when it cannot be reached, weights already in the local cache
    still load and missing ones fail at once with a line saying to pass ``none`` or a local file.
    """
    smp = _smp()
    arch = resolve_arch(info.arch)
    encoder = check_encoder(info.encoder)
    check_combination(arch, encoder)
    weights: str | None = None
    weights_file: Path | None = None
    if encoder_weights is not None and str(encoder_weights).lower() not in ("", "none", "null"):
        candidate = Path(str(encoder_weights))
        if candidate.suffix in (".pth", ".pt", ".bin", ".safetensors") or candidate.exists():
            if not candidate.is_file():
                raise ConfigError(f"--encoder-weights {candidate}: file does not exist")
            weights_file = candidate
        else:
            weights = str(encoder_weights)
    offline = hub_unreachable() if weights else None
    try:
        with warnings.catch_warnings(), _hub_offline(offline is not None):
            warnings.simplefilter("ignore")  # tu- weights names, DPT readout advice
            model = smp.create_model(
                arch,
                encoder_name=encoder,
                encoder_weights=weights,
                in_channels=info.in_channels,
                classes=info.out_channels,
            )
    except (ConfigError, CheckpointError):
        raise
    except Exception as e:  # smp/timm/hub raise many kinds of errors for a failed download
        if weights and (offline or _is_offline_error(e)):
            why = offline or type(e).__name__
            raise ConfigError(
                f"could not download {weights!r} weights for encoder {encoder} ({why}; not in the "
                "local cache); pass --encoder-weights none to train from scratch, or --encoder-weights "
                "PATH to a local encoder weights file"
            ) from e
        if weights and not isinstance(e, (AssertionError, NotImplementedError)):
            raise ConfigError(
                f"encoder {encoder} has no weights {weights!r}: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
            ) from e
        raise _build_error(arch, encoder, e) from e
    if weights_file is not None:
        state = _torch_load(weights_file)
        state = _unwrap_state_dict(state, weights_file)
        state = {k.removeprefix("encoder."): v for k, v in state.items()}
        own = model.encoder.state_dict()
        matched = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        model.encoder.load_state_dict(matched, strict=False)
        if not matched:
            raise CheckpointError(f"--encoder-weights {weights_file}: no tensor matches encoder {encoder}")
    return model


def output_stride(model: nn.Module) -> int:
    """H and W of inputs must be multiples of this (the encoder's output stride)."""
    enc = getattr(model, "encoder", None)
    stride = getattr(enc, "output_stride", None)
    return int(stride) if stride else 32


@dataclass(frozen=True)
class SizeRule:
    """The input sizes a built model takes: multiples of ``stride``, each side at least
    ``min_side``; or only ``fixed`` (W, H) (ViT encoders with a fixed patch grid)."""

    stride: int
    min_side: int
    fixed: tuple[int, int] | None = None

    def describe(self) -> str:
        if self.fixed is not None:
            return f"only {self.fixed[0]}x{self.fixed[1]}"
        text = f"width and height multiples of {self.stride}"
        return text + (f", each at least {self.min_side}" if self.min_side > self.stride else "")

    def nearest(self, width: int, height: int) -> tuple[int, int]:
        """The size this rule allows closest to (``width``, ``height``)."""
        if self.fixed is not None:
            return self.fixed

        def fit(v: int) -> int:
            return max(self.min_side, self.stride, round(v / self.stride) * self.stride)

        return fit(width), fit(height)


def _first_line(exc: BaseException) -> str:
    return next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)[:160]


def size_problem(model: nn.Module, width: int, height: int, in_channels: int = 3) -> str | None:
    """Why ``model`` cannot take a ``width`` x ``height`` input (its own error, one line), or None.

    A shape-only forward pass: the weights are swapped for meta tensors (no memory, no arithmetic),
    in eval mode; when an op has no meta kernel, one real image on the CPU instead.
    """
    from torch.func import functional_call

    was_training = model.training
    model.eval()
    try:
        tensors = {n: t for n, t in model.named_parameters()}
        tensors.update({n: t for n, t in model.named_buffers()})
        device = next(iter(tensors.values())).device if tensors else torch.device("cpu")
        meta = {n: torch.empty_like(t, device="meta") for n, t in tensors.items()}
        x = torch.empty(1, in_channels, height, width, device="meta")
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                functional_call(model, meta, (x,), strict=False)
                return None
            except (NotImplementedError, RuntimeError) as e:
                if "meta" not in str(e).lower():
                    return _first_line(e)
            except Exception as e:
                return _first_line(e)
            try:  # an op without a meta kernel: one real image
                model(torch.zeros(1, in_channels, height, width, device=device))
            except Exception as e:
                return _first_line(e)
            return None
    finally:
        model.train(was_training)


def size_rule(model: nn.Module, in_channels: int = 3, largest: int = 1024) -> SizeRule:
    """The sizes ``model`` takes, found by shape-only forward passes (squares up to ``largest``)."""
    stride = output_stride(model)
    encoder = getattr(model, "encoder", None)
    vit = getattr(encoder, "model", None)
    if getattr(encoder, "is_fixed_input_size", False) and not getattr(vit, "dynamic_img_size", False):
        embed = getattr(vit, "patch_embed", None)
        img = getattr(embed, "img_size", None)
        if img is not None:
            return SizeRule(stride, int(min(img)), (int(img[1]), int(img[0])))
    side = stride
    while side <= largest:
        if size_problem(model, side, side, in_channels) is None:
            return SizeRule(stride, side)
        side += stride
    return SizeRule(stride, largest + stride)


def model_label(info: ModelInfo) -> str:
    """``Unet/resnet18``: how errors name a model."""
    return f"{info.arch}/{info.encoder}"


def check_model_size(model: nn.Module, info: ModelInfo, size: tuple[int, int], what: str = "--size") -> None:
    """One-line :class:`ConfigError` when ``model`` cannot take ``size`` (W, H): the model, the size
    and the sizes that work. First the output stride, then a shape-only forward pass."""
    from segpipe.utils import check_divisible

    width, height = int(size[0]), int(size[1])
    stride = output_stride(model)
    try:
        check_divisible(width, height, stride, what)
    except ConfigError as e:
        if not getattr(getattr(model, "encoder", None), "is_fixed_input_size", False):
            raise ConfigError(f"{model_label(info)}: {e}") from None
    problem = size_problem(model, width, height, info.in_channels)
    if problem is None:
        return
    rule = size_rule(model, info.in_channels)
    w, h = rule.nearest(width, height)
    raise ConfigError(
        f"{what} {width} {height}: {model_label(info)} cannot take {width}x{height} ({problem}); "
        f"it takes {rule.describe()}, e.g. {what} {w} {h}"
    )


# ---- checkpoints ---------------------------------------------------------------------------------
@dataclass
class Checkpoint:
    """What a checkpoint file holds. ``info`` is ``None`` for a bare state_dict."""

    path: Path
    state_dict: dict[str, torch.Tensor]
    info: ModelInfo | None = None
    train_state: dict[str, Any] | None = None
    options: dict[str, Any] | None = None

    @property
    def is_bare(self) -> bool:
        return self.info is None


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    info: ModelInfo,
    train_state: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
) -> Path:
    """Write a self-describing checkpoint atomically (never a truncated file)."""
    module = model.module if hasattr(model, "module") else model
    module = getattr(module, "_orig_mod", module)  # torch.compile wrapper
    payload = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "model_info": info.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in module.state_dict().items()},
        "train_state": train_state,
        "options": options,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def _torch_load(path: Path, trust: bool = False) -> Any:
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "unsupported global" not in str(e).lower():
            raise CheckpointError(
                f"{path} is not a readable PyTorch checkpoint (corrupt or not a torch.save file)"
            ) from e
        if not trust:
            raise CheckpointError(
                f"{path} needs full unpickling (it holds Python objects, e.g. a whole pickled model), "
                "which can run arbitrary code; if you trust its source, pass --trust-checkpoint"
            ) from e
    except Exception as e:
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else 'corrupt'})"
        ) from e
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint ({type(e).__name__})") from e


def _unwrap_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if key in obj and isinstance(obj[key], (dict, nn.Module)):
                return _unwrap_state_dict(obj[key], path)
        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if tensors:
            return {k.removeprefix("module.").removeprefix("_orig_mod."): v for k, v in tensors.items()}
    raise CheckpointError(f"{path}: holds no model weights (type {type(obj).__name__})")


def load_checkpoint(path: str | Path, trust: bool = False) -> Checkpoint:
    """Read a segpipe checkpoint or a bare state_dict (``weights_only=True`` unless ``trust``)."""
    p = Path(path)
    obj = _torch_load(p, trust=trust)
    if isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT:
        try:
            info = ModelInfo.from_dict(obj["model_info"])
        except Exception as e:
            raise CheckpointError(f"{p}: damaged model description ({e})") from e
        return Checkpoint(p, obj["state_dict"], info, obj.get("train_state"), obj.get("options"))
    return Checkpoint(p, _unwrap_state_dict(obj, p))


def head_classes(state_dict: dict[str, torch.Tensor]) -> int | None:
    """Output channels of the segmentation head of an smp state_dict (None if not found)."""
    for key in ("segmentation_head.0.weight", "segmentation_head.weight"):
        if key in state_dict:
            return int(state_dict[key].shape[0])
    return None


def describe_bare(
    ckpt: Checkpoint,
    arch: str | None = None,
    encoder: str | None = None,
    num_classes: int | None = None,
    mode: str = "seg",
    input_size: tuple[int, int] | None = None,
) -> ModelInfo:
    """A ModelInfo for a bare state_dict, from flags and what the weights reveal."""
    head = head_classes(ckpt.state_dict)
    if num_classes is None:
        if head is None:
            raise CheckpointError(
                f"{ckpt.path} is a bare state_dict without a segmentation head; pass --num-classes"
            )
        num_classes = 2 if (mode == "binary" and head == 1) else head
    out = 1 if mode == "binary" else num_classes
    if head is not None and head != out:
        raise CheckpointError(
            f"--num-classes {num_classes} contradicts {ckpt.path}: its segmentation head has {head} outputs"
        )
    enc = encoder or DEFAULT_ENCODER
    mean, std = preprocessing_params(enc)  # weights unknown: ImageNet statistics
    return ModelInfo(
        arch=resolve_arch(arch or DEFAULT_ARCH),
        encoder=check_encoder(enc),
        num_classes=num_classes,
        mode=mode,
        mean=mean,
        std=std,
        input_size=input_size or (512, 512),
    )


def load_model(
    path: str | Path,
    arch: str | None = None,
    encoder: str | None = None,
    num_classes: int | None = None,
    mode: str = "seg",
    trust: bool = False,
    device: str | torch.device = "cpu",
) -> tuple[nn.Module, ModelInfo, Checkpoint]:
    """Load a model file into an ``eval()`` smp model: segpipe checkpoints describe themselves.

    For a segpipe checkpoint, ``num_classes`` (if given) must match it; ``arch``/``encoder`` are
    ignored unless they contradict it. A bare state_dict needs ``arch`` and ``encoder`` unless they
    are the original defaults (Unet, efficientnet-b0).
    """
    ckpt = load_checkpoint(path, trust=trust)
    if ckpt.info is not None:
        info = ckpt.info
        if num_classes is not None and num_classes != info.num_classes:
            raise CheckpointError(
                f"--num-classes {num_classes} contradicts {ckpt.path}, which was trained for {info.num_classes} classes"
            )
        for flag, given, have in (("--arch", arch, info.arch), ("--encoder", encoder, info.encoder)):
            if given is not None and given.lower() != have.lower():
                raise CheckpointError(f"{flag} {given} contradicts {ckpt.path}, which holds a {have} model")
    else:
        info = describe_bare(ckpt, arch, encoder, num_classes, mode)
    model = create_model(info, encoder_weights=None)
    try:
        model.load_state_dict(ckpt.state_dict, strict=True)
    except RuntimeError as e:
        missing = len(set(model.state_dict()) - set(ckpt.state_dict))
        extra = len(set(ckpt.state_dict) - set(model.state_dict()))
        hint = " pass --arch and --encoder matching the weights" if ckpt.is_bare else ""
        raise CheckpointError(
            f"{ckpt.path}: weights do not fit {info.arch}/{info.encoder} with {info.out_channels} outputs "
            f"({missing} missing, {extra} unexpected tensors, e.g. {shorten(str(e).splitlines()[1], 120) if len(str(e).splitlines()) > 1 else ''});{hint}"
        ) from e
    model.eval().to(device)
    return model, info, ckpt


# ---- preprocessing shared by training and deployment ---------------------------------------------
class Normalize(nn.Module):
    """N×H×W×3 RGB pixels (uint8 or float 0-255) -> normalised float N×3×H×W (channels-last memory).

    ``(x / 255 - mean) / std``, folded into one multiply-add. Used by the training loop on the
    device and inside exported graphs, so training and deployment preprocess identically.
    """

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        mean_t = torch.tensor(mean, dtype=torch.float32)
        std_t = torch.tensor(std, dtype=torch.float32)
        self.register_buffer("scale", 1.0 / (255.0 * std_t), persistent=False)
        self.register_buffer("shift", -mean_t / std_t, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.scale.dtype) * self.scale + self.shift
        return x.permute(0, 3, 1, 2)


OUTPUT_KINDS = ("logits", "probs", "labels")


class DeployModel(nn.Module):
    """The network as deployed: NHWC RGB 0-255 in, logits / probabilities / class map out.

    This is what ``export-onnx`` exports and what the PyTorch runner runs, so both backends see
    exactly the same graph. ``labels`` is the argmax (binary: logit > 0) as int64 N×H×W.
    """

    def __init__(self, model: nn.Module, info: ModelInfo, output: str = "logits") -> None:
        super().__init__()
        if output not in OUTPUT_KINDS:
            raise ConfigError(f"--output {output!r} is not one of {', '.join(OUTPUT_KINDS)}")
        self.model = model
        self.normalize = Normalize(info.mean, info.std)
        self.mode = info.mode
        self.output = output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.model(self.normalize(x))
        if self.output == "logits":
            return y
        if self.output == "probs":
            return torch.softmax(y, dim=1) if self.mode == "seg" else torch.sigmoid(y)
        if self.mode == "binary":
            return (y[:, 0] > 0).to(torch.int64)
        return torch.argmax(y, dim=1)
