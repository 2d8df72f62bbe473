"""Model factory: a lookup delegating to ``smp.create_model`` (architecture, encoder and their
combination checked first, one line each), encoder weights from the hub or a file, and building the
model a checkpoint or a bare state_dict describes (:func:`load_model`)."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from segpipe.errors import CheckpointError, ConfigError, close_matches, first_line, shorten
from segpipe.modelinfo import IMAGENET_MEAN, IMAGENET_STD, ModelInfo
from segpipe.models.checkpoint import (
    Checkpoint,
    _torch_load,
    _unwrap_state_dict,
    head_classes,
    load_checkpoint,
)

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
    first = first_line(exc, limit=500, typed=False)
    hint = ""
    if "output_stride" in first and "unexpected keyword" in first:
        hint = (
            f"; {arch} needs an encoder that can change its output stride (dilated convolutions), "
            f"which {encoder} cannot: use {encoder} with Unet, FPN, UPerNet or Segformer, or {arch} "
            "with an encoder that can (e.g. resnet34, tu-resnet18, tu-convnext_atto)"
        )
    elif "downsampling pattern" in first:
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
                f"encoder {encoder} has no weights {weights!r}: {first_line(e, typed=False)}"
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
