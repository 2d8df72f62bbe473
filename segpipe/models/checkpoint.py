"""Model factory (a lookup delegating to ``smp.create_model``) and the checkpoint contract.

Checkpoint contract (ARCHITECTURE.md, contracts): a dict loadable with ``torch.load(path, weights_only=True)``::

    {"format": "segpipe", "format_version": 1,
     "model_info": ModelInfo.to_dict(),      # arch, encoder, classes, mode, size, mean/std, names...
     "state_dict": {...},                    # model weights (CPU tensors)
     "train_state": {...} | None,            # epoch, optimizer, scheduler, scaler, rng, best metric
     "options": {...} | None}                # the resolved TrainOptions (plain types)

A bare ``state_dict`` (what older scripts saved) still loads when the architecture and encoder
are named (``--arch``, ``--encoder``; defaults Unet / efficientnet-b0 as the original tool used);
the class count is read from the segmentation head.

The ``model_info`` is written and read through the declared schema
(:class:`segpipe.schema.files.ModelInfoFile`): a damaged description is one line naming the file,
the field and the value.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from segpipe.errors import CheckpointError, first_line
from segpipe.modelinfo import ModelInfo
from segpipe.utils import atomic_path

CHECKPOINT_FORMAT = "segpipe"
CHECKPOINT_VERSION = 1


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
        "model_info": info.to_file_dict(f"{path}: model_info"),
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
            f"{path} is not a readable PyTorch checkpoint ({first_line(e)})"
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
        info = ModelInfo.from_dict(obj.get("model_info"), f"{p}: model_info")
        state = obj.get("state_dict")
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise CheckpointError(f"{p}: state_dict is not a mapping of tensors ({type(state).__name__})")
        extras = {k: obj.get(k) for k in ("train_state", "options")}
        for key, value in extras.items():
            if value is not None and not isinstance(value, dict):
                raise CheckpointError(f"{p}: {key} is a {type(value).__name__}, not a mapping")
        return Checkpoint(p, state, info, extras["train_state"], extras["options"])
    return Checkpoint(p, _unwrap_state_dict(obj, p))


def head_classes(state_dict: dict[str, torch.Tensor]) -> int | None:
    """Output channels of the segmentation head of an smp state_dict (None if not found)."""
    for key in ("segmentation_head.0.weight", "segmentation_head.weight"):
        if key in state_dict:
            return int(state_dict[key].shape[0])
    return None
