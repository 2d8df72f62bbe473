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

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from segpipe.errors import CheckpointError, ConfigError, close_matches
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


def check_encoder(name: str) -> str:
    """The encoder name if smp knows it; one-line error listing close matches otherwise."""
    names = _smp().encoders.get_encoder_names()
    if name in names:
        return name
    hint = close_matches(name, names) or f"; {len(names)} encoders exist (see smp's encoder list)"
    raise ConfigError(f"unknown encoder {name!r}{hint}")


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
    )
    return any(n in text for n in needles) or isinstance(exc, OSError)


def create_model(info: ModelInfo, encoder_weights: str | Path | None = None) -> nn.Module:
    """Build the smp model ``info`` describes.

    ``encoder_weights``: ``None``/``"none"`` (random init), a name smp knows (``imagenet``...), or a
    path to a file holding the encoder's state_dict. When a download fails (offline), the error
    says to pass ``none`` or a local file.
    """
    smp = _smp()
    arch = resolve_arch(info.arch)
    encoder = check_encoder(info.encoder)
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
    try:
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
        if weights and _is_offline_error(e):
            raise ConfigError(
                f"could not download {weights!r} weights for encoder {encoder} ({type(e).__name__}); "
                "offline? pass --encoder-weights none to train from scratch, or --encoder-weights "
                "PATH to a local encoder weights file"
            ) from e
        if weights:
            raise ConfigError(
                f"encoder {encoder} has no weights {weights!r}: {str(e).splitlines()[0]}"
            ) from e
        raise
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
            f"({missing} missing, {extra} unexpected tensors, e.g. {str(e).splitlines()[1].strip()[:120] if len(str(e).splitlines()) > 1 else ''});{hint}"
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
