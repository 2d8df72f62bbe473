"""The PyTorch side of ``segpipe export-onnx``: the module made exportable (swish, fixed-grid
pooling, FP16 with FP32 input and output) and ``torch.onnx.export`` with its output captured.

A full disk while the exporter writes is said as such (:class:`~segpipe.utils.DiskFullError`),
never blamed on the exporter; the exporter's log is removed if SIGTERM/SIGHUP end the process.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from segpipe.errors import ExportError, shorten
from segpipe.export.graph import INPUT_NAME, OUTPUT_NAME


# ---- the module to export ------------------------------------------------------------------------
def make_exportable(model: Any) -> Any:
    """Switch encoders with a memory-efficient swish to the exportable one (older smp EfficientNets).

    smp 0.6's EfficientNet encoders already use ``nn.SiLU`` (exported as Sigmoid and Mul);
    encoders built on ``efficientnet_pytorch`` have ``set_swish``, whose memory-efficient variant is
    a custom autograd function no exporter can trace.
    """
    encoder = getattr(model, "encoder", None)
    if encoder is not None and hasattr(encoder, "set_swish"):
        encoder.set_swish(memory_efficient=False)
    return model


def grid_pools(model: Any) -> list[tuple[int, int]]:
    """Output grids of the adaptive average poolings in ``model`` that pool to more than one cell
    (PSPNet's and UPerNet's pyramid pooling: 2x2, 3x3, 6x6). ONNX has no adaptive pooling; such
    a pooling exports for one input size only."""
    from torch import nn

    grids = []
    for m in model.modules():
        if isinstance(m, nn.AdaptiveAvgPool2d):
            size = m.output_size if isinstance(m.output_size, tuple) else (m.output_size, m.output_size)
            if any(v not in (1, None) for v in size):
                grids.append((int(size[0]), int(size[1])))
    return grids


def fixed_grid_pooling(model: Any) -> Any:
    """``model`` (changed in place) with every multi-cell adaptive average pooling written as
    plain average pooling over the windows PyTorch uses (``floor(i*n/k)`` to ``ceil((i+1)*n/k)``)
    for the size being traced: the TorchScript exporter expresses that at any size, exactly.

    PSPNet's blocks switch to ``F.interpolate(mode="area")`` while exporting (the same pooling,
    the same export failure); they get their ordinary forward back.
    """
    import torch
    import torch.nn.functional as F
    from torch import nn

    class GridAvgPool2d(nn.Module):
        def __init__(self, output_size: tuple[int, int]) -> None:
            super().__init__()
            self.output_size = output_size

        def forward(self, x: Any) -> Any:
            h, w = int(x.shape[-2]), int(x.shape[-1])
            oh, ow = self.output_size
            if h % oh == 0 and w % ow == 0:
                return F.avg_pool2d(x, (h // oh, w // ow))
            rows = []
            for i in range(oh):
                h0, h1 = (i * h) // oh, -((-(i + 1) * h) // oh)
                cells = [
                    x[..., h0:h1, (j * w) // ow : -((-(j + 1) * w) // ow)].mean(dim=(-2, -1), keepdim=True)
                    for j in range(ow)
                ]
                rows.append(torch.cat(cells, dim=-1))
            return torch.cat(rows, dim=-2)

    class PlainPSPBlock(nn.Module):
        def __init__(self, pool: nn.Module) -> None:
            super().__init__()
            self.pool = pool

        def forward(self, x: Any) -> Any:
            height, width = x.shape[2:]
            return F.interpolate(self.pool(x), size=(height, width), mode="bilinear", align_corners=True)

    def swap(parent: nn.Module) -> None:
        for name, child in parent.named_children():
            if isinstance(child, nn.AdaptiveAvgPool2d):
                size = child.output_size if isinstance(child.output_size, tuple) else (child.output_size,) * 2
                if any(v not in (1, None) for v in size):
                    setattr(parent, name, GridAvgPool2d((int(size[0]), int(size[1]))))
                continue
            swap(child)
            if type(child).__name__ == "PSPBlock" and hasattr(child, "pool"):
                setattr(parent, name, PlainPSPBlock(child.pool))

    swap(model)
    return model


def _half_io_module(deploy: Any) -> Any:
    """``deploy`` in FP16 with FP32 input and output: casts at both ends of the graph."""
    from torch import nn

    class HalfWithFloatIO(nn.Module):
        """FP32 (or uint8) pixels in -> FP16 network -> FP32 logits/probs out (labels stay int64)."""

        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner.half()

        def forward(self, x: Any) -> Any:
            y = self.inner(x.half() if x.is_floating_point() else x)
            return y.float() if y.is_floating_point() else y

    return HalfWithFloatIO(deploy).eval()


@contextlib.contextmanager
def captured_output(log_path: Path) -> Iterator[None]:
    """Everything written to stdout and stderr in the block, by Python and by C++ (file
    descriptors 1 and 2: the TorchScript exporter prints its "Torch IR graph at exception" dump
    from C++), goes to ``log_path`` instead of the terminal."""
    import os
    import sys

    def flush() -> None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        with contextlib.suppress(Exception):
            import ctypes

            ctypes.CDLL(None).fflush(None)

    with open(log_path, "w", encoding="utf-8", errors="replace") as log:
        flush()
        try:
            saved = [os.dup(1), os.dup(2)]
        except OSError:  # no file descriptors (embedded interpreter): Python-level only
            saved = []
        try:
            for fd in (1, 2) if saved else ():
                os.dup2(log.fileno(), fd)
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                yield
        finally:
            flush()
            for fd, old in zip((1, 2), saved, strict=False):
                os.dup2(old, fd)
                os.close(old)


def torch_to_onnx(
    module: Any,
    example: Any,
    path: Path,
    opset: int,
    axes: dict[str, dict[int, str]],
    exporter: str = "torchscript",
    log_path: Path | None = None,
    shown: Path | None = None,
) -> None:
    """Run ``torch.onnx.export``; one-line :class:`ExportError` when the exporter fails.

    Whatever the exporters print (the TorchScript exporter's deprecation notice and graph dumps,
    the dynamo exporter's progress lines) goes to ``log_path`` (default: beside ``path``, suffix
    ``.export.log``), which is removed after a successful export (or an interruption: Ctrl-C,
    SIGTERM, SIGHUP) and named in the error otherwise. A full disk raises
    :class:`~segpipe.utils.DiskFullError` naming ``shown`` (the file the user asked for; default
    ``path``): no other exporter would fit on it either.
    """
    import torch

    from segpipe.utils import disk_full_error, removed_on_signals

    kwargs: dict[str, Any] = {
        "input_names": [INPUT_NAME],
        "output_names": [OUTPUT_NAME],
        "opset_version": opset,
        "dynamo": exporter == "dynamo",
    }
    if axes:
        kwargs["dynamic_axes"] = axes
    if exporter == "torchscript":
        kwargs["do_constant_folding"] = True
    else:
        kwargs["verbose"] = False
    log = log_path or path.with_suffix(".export.log")
    try:
        with removed_on_signals(log), warnings.catch_warnings(), captured_output(log), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (example,), str(path), **kwargs)
    except Exception as e:
        full = disk_full_error(shown or path, e)
        if full is not None:
            log.unlink(missing_ok=True)
            raise full from e
        first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
        with contextlib.suppress(OSError), open(log, "a", encoding="utf-8") as f:
            import traceback

            f.write("\n" + "".join(traceback.format_exception(e)))
        raise ExportError(
            f"torch.onnx.export ({exporter} exporter, opset {opset}) failed: "
            f"{type(e).__name__}: {shorten(first, 300)} (exporter output in {log})"
        ) from e
    except BaseException:  # Ctrl-C: nothing to look at in a half-written log
        log.unlink(missing_ok=True)
        raise
    log.unlink(missing_ok=True)
