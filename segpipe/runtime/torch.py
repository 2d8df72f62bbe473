"""PyTorch backend: runs a ``.pth`` checkpoint on CPU or CUDA.

The runner wraps the network in :class:`~segpipe.models.DeployModel`, the very module
``export-onnx`` exports, so its preprocessing (NHWC RGB 0-255 in, normalisation inside) is the
deployed graph's and its outputs can be compared with the ONNX and TensorRT runners directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from segpipe.runtime.base import Runner


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
        **kwargs: Any,
    ) -> None:
        super().__init__(path, device)
        import torch

        from segpipe.models import DeployModel, load_model, output_stride
        from segpipe.utils import resolve_device

        self._torch = torch
        self.torch_device = resolve_device(device)
        model, info, _ = load_model(
            self.path,
            arch=arch,
            encoder=encoder,
            num_classes=num_classes,
            mode=mode,
            trust=trust,
            device=self.torch_device,
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
