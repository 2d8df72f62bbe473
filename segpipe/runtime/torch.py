"""PyTorch backend: runs a ``.pth`` checkpoint on CPU or CUDA.

The runner wraps the network in :class:`~segpipe.models.DeployModel`, the very module
``export-onnx`` exports, so its preprocessing (NHWC RGB 0-255 in, normalisation inside) is the
deployed graph's and its outputs can be compared with the ONNX and TensorRT runners directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from segpipe.errors import CheckpointError
from segpipe.runtime.base import Runner, check_normalization, normalization_note


class TorchRunner(Runner):
    """A segpipe checkpoint (or a bare state_dict) run with PyTorch.

    Args:
        path: the ``.pth`` / ``.pt`` file.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``.
        num_classes: checked against a segpipe checkpoint; needed for a bare state_dict whose
            head does not reveal it.
        arch, encoder, mode: describe a bare state_dict (defaults Unet / efficientnet-b0 / seg).
        trust: allow full unpickling of checkpoints that hold Python objects.
        output: ``logits`` (default), ``probs`` or ``labels``: what :meth:`__call__` returns.
        mean, std: a bare state_dict's normalisation in pixel units (0-255), as for ONNX models
            without metadata; default the encoder's (said in a warning). Refused for a segpipe
            checkpoint, which carries its own.
        input_layout: refused: a checkpoint always takes NHWC RGB through its deploy wrapper.
        lenient: flags given for several models at once (``benchmark``): those that do not apply
            here are ignored with a warning instead of refused.
    """

    backend = "pytorch"

    def __init__(
        self,
        path: str | Path,
        device: str = "auto",
        *,
        num_classes: int | None = None,
        arch: str | None = None,
        encoder: str | None = None,
        mode: str = "seg",
        trust: bool = False,
        output: str = "logits",
        mean: Any = None,
        std: Any = None,
        input_layout: str | None = None,
        reporter: Any = None,
        lenient: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(path, device)
        if lenient and input_layout is not None:
            input_layout = None
            if reporter is not None:
                reporter.warn(f"{self.path} is a PyTorch checkpoint: --input-layout ignored for it")
        if input_layout is not None:
            raise CheckpointError(
                f"--input-layout {input_layout}: {self.path} is a PyTorch checkpoint; the flag describes "
                "an ONNX model without segpipe metadata"
            )
        import torch

        from segpipe.models import DeployModel, load_model, output_stride
        from segpipe.utils import resolve_device

        self._torch = torch
        self.torch_device = resolve_device(device)
        model, info, ckpt = load_model(
            self.path,
            arch=arch,
            encoder=encoder,
            num_classes=num_classes,
            mode=mode,
            trust=trust,
            device=self.torch_device,
        )
        if lenient and not ckpt.is_bare and (mean is not None or std is not None):
            mean = std = None
            if reporter is not None:
                reporter.warn(f"{self.path} carries its own normalisation: --mean/--std ignored for it")
        if mean is not None or std is not None:
            if not ckpt.is_bare:
                raise CheckpointError(
                    f"--mean/--std: {self.path} is a segpipe checkpoint and carries its own normalisation "
                    f"({normalization_note(np.asarray(info.mean) * 255, np.asarray(info.std) * 255)}); "
                    "the flags are for files without it"
                )
            m, s = check_normalization(mean, std, self.path)
            info = info.replace(mean=tuple(float(v) / 255 for v in m), std=tuple(float(v) / 255 for v in s))
            if reporter is not None:
                reporter.warn(f"{self.path} is a bare state_dict: feeding it {normalization_note(m, s)}")
        elif ckpt.is_bare and reporter is not None:
            px = np.asarray(info.mean) * 255, np.asarray(info.std) * 255
            reporter.warn(
                f"{self.path} is a bare state_dict: assuming its encoder's normalisation, "
                f"{normalization_note(*px)}; pass --mean/--std if it was trained otherwise"
            )
        self.info = info.replace(output_stride=output_stride(model), output_kind=output)
        self.module = DeployModel(model, info, output).eval().to(self.torch_device)
        self._sizes_ok: set[tuple[int, int]] = set()
        if self.torch_device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            self.module = self.module.to(memory_format=torch.channels_last)
            torch.cuda.reset_peak_memory_stats(self.torch_device)

    def check_size(self, width: int, height: int) -> None:
        """One-line ConfigError when the model cannot take ``width`` x ``height`` (shape-only pass:
        PAN's minimum side, a ViT's fixed size...), naming the sizes that work."""
        from segpipe.models import check_model_size

        if self.module is not None and (width, height) not in self._sizes_ok:
            check_model_size(self.module.model, self.info, (width, height))
            self._sizes_ok.add((width, height))

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Batch N×H×W×3 RGB (uint8 or float32 0-255) -> logits N×C×H×W or class map N×H×W."""
        torch = self._torch
        if self.module is None:
            raise RuntimeError(f"runner for {self.path} is closed")
        x = torch.from_numpy(np.ascontiguousarray(images))
        # uint8 travels to the GPU as is (4x less to copy); DeployModel converts on the device
        x = x.to(self.torch_device, non_blocking=True)
        with torch.inference_mode():
            y = self.module(x)
        if y.is_floating_point():
            y = y.float()
        return y.cpu().numpy()

    def peak_memory_bytes(self) -> int | None:
        if self.torch_device.type == "cuda":
            return int(self._torch.cuda.max_memory_allocated(self.torch_device))
        return None

    def close(self) -> None:
        if getattr(self, "module", None) is not None:
            self.module = None
            if self.torch_device.type == "cuda":
                self._torch.cuda.empty_cache()
