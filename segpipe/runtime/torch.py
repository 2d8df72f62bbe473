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
from segpipe.runtime.base import Runner
from segpipe.runtime.feed import check_normalization, normalization_note


class TorchRunner(Runner):
    """A segpipe checkpoint (or a bare state_dict) run with PyTorch.

    ``device``: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``. Keywords
    (:class:`~segpipe.runtime.feed.RunnerOptions`): ``num_classes`` (checked against a segpipe
    checkpoint), ``arch``/``encoder``/``mode`` and ``mean``/``std`` for a bare state_dict (default
    its encoder's normalisation, said in a warning; refused for a segpipe checkpoint, which carries
    its own), ``trust``, ``output`` (what :meth:`__call__` returns); ``input_layout`` is refused (a
    checkpoint takes NHWC RGB through its deploy wrapper); ``lenient`` ignores with a warning what
    does not apply here.
    """

    backend = "pytorch"

    def __init__(self, path: str | Path, device: str = "auto", **kwargs: Any) -> None:
        super().__init__(path, device, **kwargs)
        o = self.options.drop(("input_layout",), self.path, "is a PyTorch checkpoint")
        if o.input_layout is not None:
            raise CheckpointError(
                f"--input-layout {o.input_layout}: {self.path} is a PyTorch checkpoint; the flag describes "
                "an ONNX model without segpipe metadata"
            )
        import torch

        from segpipe.models import DeployModel, load_model, output_stride
        from segpipe.utils import resolve_device

        self._torch = torch
        self.torch_device = resolve_device(device)
        model, info, ckpt = load_model(self.path, device=self.torch_device, **o.checkpoint())
        if not ckpt.is_bare:
            o = o.drop(("mean", "std"), self.path, "carries its own normalisation")
        reporter = o.reporter
        if o.mean is not None or o.std is not None:
            if not ckpt.is_bare:
                raise CheckpointError(
                    f"--mean/--std: {self.path} is a segpipe checkpoint and carries its own normalisation "
                    f"({normalization_note(np.asarray(info.mean) * 255, np.asarray(info.std) * 255)}); "
                    "the flags are for files without it"
                )
            m, s = check_normalization(o.mean, o.std, self.path)
            info = info.replace(mean=tuple(float(v) / 255 for v in m), std=tuple(float(v) / 255 for v in s))
            if reporter is not None:
                reporter.warn(f"{self.path} is a bare state_dict: feeding it {normalization_note(m, s)}")
        elif ckpt.is_bare and reporter is not None:
            px = np.asarray(info.mean) * 255, np.asarray(info.std) * 255
            reporter.warn(
                f"{self.path} is a bare state_dict: assuming its encoder's normalisation, "
                f"{normalization_note(*px)}; pass --mean/--std if it was trained otherwise"
            )
        self.info = info.replace(output_stride=output_stride(model), output_kind=o.output)
        self.module = DeployModel(model, info, o.output).eval().to(self.torch_device)
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
