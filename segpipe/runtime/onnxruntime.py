"""ONNX Runtime backend: runs an ``.onnx`` model with the CPU provider, or CUDA when available.

The model's description (classes, names, colours, size...) is read from the segpipe metadata props
``export-onnx`` writes. A foreign ONNX file without them (a plain ``torch.onnx.export``) runs only
when the user says how to feed it, since a wrong guess gives wrong results without an error: its
normalisation (``mean``/``std`` in pixel units, or a uint8 input taking pixels as they are), its
layout when the input shape does not show it (``input_layout``) and its class count when the output
does not (``num_classes``); what is assumed is reported in one warning. Inputs may be NHWC
(segpipe's contract, ``input_1``) or NCHW, float32 or uint8; outputs logits, probabilities or a
class map.
A graph with a fixed batch size is fed in chunks of that size (a batch of 1 is looped).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from segpipe._optional import require
from segpipe.errors import CheckpointError, ConfigError, first_line
from segpipe.imagesize import check_pixels
from segpipe.modelinfo import ModelInfo
from segpipe.progress import Reporter
from segpipe.runtime.base import Runner
from segpipe.runtime.feed import FOREIGN, RunnerOptions, check_normalization, normalization_note

_DTYPES = {"tensor(float)": np.float32, "tensor(uint8)": np.uint8, "tensor(float16)": np.float16}


def _providers(ort: Any, device: str) -> list[Any]:
    """Execution providers for ``auto | cpu | cuda | cuda:N``; one-line error when CUDA is missing."""
    spec = (device or "auto").strip().lower()
    have_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    if spec == "cpu":
        return ["CPUExecutionProvider"]
    if spec == "auto":
        return (["CUDAExecutionProvider"] if have_cuda else []) + ["CPUExecutionProvider"]
    if spec == "cuda" or spec.startswith("cuda:"):
        if not have_cuda:
            raise ConfigError(
                f"--device {device}: this onnxruntime has no CUDA provider "
                "(pip install onnxruntime-gpu), or use --device cpu"
            )
        index = int(spec.split(":", 1)[1]) if ":" in spec else 0
        return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
    raise ConfigError(f"--device {device!r} is not one of auto, cpu, cuda, cuda:N")


#: ``optimize`` -> ONNX Runtime's ``GraphOptimizationLevel`` member.
OPTIMIZE = {"all": "ORT_ENABLE_ALL", "extended": "ORT_ENABLE_EXTENDED", "none": "ORT_DISABLE_ALL"}


def session_options(threads: int = 0, optimize: str = "all", save_to: str | Path | None = None) -> Any:
    """ONNX Runtime session options: ``threads`` intra-op threads (0: one per core), the graph
    optimizations of :data:`OPTIMIZE`, errors only in the log; ``save_to`` writes the graph the
    session runs (after its optimizations) to that file."""
    ort = require("onnxruntime", "running .onnx models")
    so = ort.SessionOptions()
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPTIMIZE[optimize])
    so.intra_op_num_threads = int(threads)
    so.log_severity_level = 3  # errors only: keep provider fallbacks off the terminal
    if save_to is not None:
        so.optimized_model_filepath = str(save_to)
    return so


def open_session(
    model: str | Path | bytes, so: Any = None, providers: Any = ("CPUExecutionProvider",)
) -> Any:
    """An ``onnxruntime.InferenceSession`` of a file or a serialized graph.

    The one place segpipe creates one: the runners (:class:`OnnxRunner`, :class:`GraphRunner`),
    and through them every verification, the INT8 gate and its integer-op inspection
    (:mod:`segpipe.export.qdq_emulate`), so sessions differ only by the options they are given.
    """
    ort = require("onnxruntime", "running .onnx models")
    source = model if isinstance(model, bytes) else str(model)
    # the only InferenceSession in segpipe: runners, verification, the INT8 gate and integer_ops
    return ort.InferenceSession(
        source, so if so is not None else session_options(), providers=list(providers)
    )


class GraphRunner:
    """An ONNX graph as written, on ONNX Runtime's CPU provider: what verification compares.

    No segpipe feeding (no metadata needed, no normalisation, no layout change): a batch is cast to
    the first input's type and fed to it; the output named ``output`` (else the first) comes back.
    ``graph`` and ``optimize`` as for :class:`OnnxRunner`. Raises what ONNX Runtime raises: each
    check says in its own words what could not be loaded.
    """

    def __init__(
        self, path: str | Path, *, graph: bytes | None = None, optimize: str = "all", threads: int = 0
    ) -> None:
        self.path = Path(path)
        self.session = open_session(graph or self.path, session_options(threads, optimize))
        first = self.session.get_inputs()[0]
        names = [o.name for o in self.session.get_outputs()]
        self.input_name, self.output_name = first.name, "output" if "output" in names else names[0]
        self.dtype = _DTYPES.get(first.type, np.float32)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """The graph's output for ``batch`` (cast to the input's type)."""
        x = np.asarray(batch).astype(self.dtype, copy=False)
        return self.session.run([self.output_name], {self.input_name: x})[0]

    def close(self) -> None:
        self.session = None

    def __enter__(self) -> GraphRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _static(dim: Any) -> int | None:
    return dim if isinstance(dim, int) and dim > 0 else None


class OnnxRunner(Runner):
    """An ONNX model run with ONNX Runtime.

    ``device``: ``auto`` (CUDA provider when installed), ``cpu``, ``cuda`` or ``cuda:N``. Keywords
    (:class:`~segpipe.runtime.feed.RunnerOptions`): ``num_classes`` (checked against the metadata),
    and for a model without metadata ``mode``, ``mean``/``std`` (required for a float input) and
    ``input_layout``; ``threads``, ``graph`` and ``optimize`` (the session), ``reporter`` (what is
    assumed about a model without metadata), ``lenient`` (a model with metadata then ignores
    ``mean``/``std``/``input_layout`` with a warning instead of refusing them).
    """

    backend = "onnxruntime"

    def __init__(self, path: str | Path, device: str = "auto", **kwargs: Any) -> None:
        super().__init__(path, device, **kwargs)
        reporter = self.options.reporter
        self._norm: tuple[np.ndarray, np.ndarray] | None = None
        self._assumed = ""
        inputs, outputs, props = self._open(device, int(self.options.threads), reporter)
        self._input = next((i for i in inputs if i.name == "input_1"), inputs[0])
        self._output = next((o for o in outputs if o.name == "output"), outputs[0])
        if len(self._input.shape) != 4:
            raise CheckpointError(
                f"{self.path}: input {self._input.name} has shape {self._input.shape}; expected 4 axes"
            )
        if self._input.type not in _DTYPES:
            raise CheckpointError(
                f"{self.path}: input {self._input.name} has type {self._input.type}; "
                f"expected one of {', '.join(_DTYPES)}"
            )
        self._in_dtype = _DTYPES[self._input.type]
        meta = ModelInfo.from_metadata(props or {}, f"{self.path}: metadata")
        opts = self.options
        if meta is not None:
            opts = opts.drop(tuple(FOREIGN), self.path, "carries segpipe metadata")
        self.info = self._describe(meta, opts)
        shape = self._input.shape
        self._nhwc = self.info.layout == "NHWC"
        h, w = (shape[1], shape[2]) if self._nhwc else (shape[2], shape[3])
        #: (W, H) when the graph only takes that size, else None.
        self.fixed_size = (w, h) if _static(w) and _static(h) else None
        if self.fixed_size is not None:  # nothing allocated yet: refuse a size no memory holds
            check_pixels(w, h, f"{self.path}: input {self._input.name} declares")
        if self.fixed_size is not None and self.fixed_size != self.info.input_size:
            self.info = self.info.replace(input_size=self.fixed_size)
        #: the graph's fixed batch size, or None when the batch axis is dynamic
        self.fixed_batch = _static(shape[0])
        if self._assumed and reporter is not None:
            w, h = self.info.input_size
            how = "fixed by the graph" if self.fixed_size else "segpipe's default unless --size W H is given"
            reporter.warn(f"{self._assumed}; input size {w}x{h} ({how})")

    def _open(self, device: str, threads: int, reporter: Reporter | None) -> tuple[list, list, dict]:
        """Create the session; return its inputs and outputs (``name``, ``shape``, ``type`` each)
        and the model's metadata props. A backend that reads ONNX files another way overrides it."""
        ort = require("onnxruntime", "running .onnx models")
        providers = _providers(ort, device)
        so = session_options(threads, self.options.optimize)
        self.int8_note = ""
        if providers == ["CPUExecutionProvider"] and self.options.optimize == "all":
            from segpipe.runtime.cpu import ort_int8_settings

            self.int8_note = ort_int8_settings(so, self.path)
            if self.int8_note and reporter is not None:
                reporter.warn(self.int8_note)
        try:
            self.session = open_session(self.options.graph or self.path, so, providers)
        except Exception as e:
            raise CheckpointError(f"{self.path} is not a loadable ONNX model ({first_line(e)})") from e
        self.providers = self.session.get_providers()
        props = self.session.get_modelmeta().custom_metadata_map or {}
        return self.session.get_inputs(), self.session.get_outputs(), props

    def _layout(self, input_layout: str | None) -> str | None:
        """NHWC / NCHW from ``input_layout`` (checked against the shape), else from the shape."""
        shape = self._input.shape

        def may_be_channels(dim: Any) -> bool:  # 3, or a dynamic axis
            return dim == 3 or _static(dim) is None

        nhwc, nchw = may_be_channels(shape[-1]), may_be_channels(shape[1])
        if input_layout is not None:
            want = input_layout.strip().upper()
            if want not in ("NHWC", "NCHW"):
                raise ConfigError(f"--input-layout {input_layout!r}: use nchw or nhwc")
            if not (nhwc if want == "NHWC" else nchw):
                raise CheckpointError(
                    f"--input-layout {input_layout}: {self.path} has input {self._input.name} of shape "
                    f"{shape}, which has no 3-channel axis where {want} puts it"
                )
            return want
        if shape[-1] == 3 and shape[1] != 3:
            return "NHWC"
        if shape[1] == 3 and shape[-1] != 3:
            return "NCHW"
        return None

    def _describe(self, meta: ModelInfo | None, opts: RunnerOptions) -> ModelInfo:
        num_classes, mode, mean, std = opts.num_classes, opts.mode, opts.mean, opts.std
        input_layout = opts.input_layout
        shape = self._input.shape
        layout = self._layout(input_layout)
        out_shape = self._output.shape
        kind = "labels" if len(out_shape) == 3 else "logits"
        channels = _static(out_shape[1]) if len(out_shape) == 4 else None
        if meta is not None:
            if mean is not None or std is not None:
                raise CheckpointError(
                    f"--mean/--std: {self.path} carries segpipe metadata and normalises its input inside "
                    "the graph; the flags are for ONNX models without it"
                )
            if layout is not None and input_layout is not None and layout != meta.layout:
                raise CheckpointError(
                    f"--input-layout {input_layout} contradicts {self.path}, whose metadata says {meta.layout}"
                )
            if num_classes is not None and num_classes != meta.num_classes:
                raise CheckpointError(
                    f"--num-classes {num_classes} contradicts {self.path}, "
                    f"which was exported for {meta.num_classes} classes"
                )
            if channels is not None and channels != meta.out_channels:
                raise CheckpointError(
                    f"{self.path}: output has {channels} channels but its metadata says "
                    f"{meta.num_classes} classes ({meta.mode} mode)"
                )
            return meta.replace(
                layout=layout or meta.layout,
                input_dtype="uint8" if self._in_dtype == np.uint8 else "float32",
                output_kind=meta.output_kind if kind == "logits" else "labels",
            )
        classes_from = "--num-classes"
        if num_classes is None and channels is not None:
            num_classes, mode = (2, "binary") if channels == 1 else (channels, mode)
            classes_from = f"its output's {channels} channel(s)"
        if num_classes is None:
            raise CheckpointError(
                f"{self.path} has no segpipe metadata and its output does not show the class count; "
                "pass --num-classes (or export it with segpipe export-onnx)"
            )
        if channels is not None and channels != (1 if mode == "binary" else num_classes):
            raise CheckpointError(
                f"--num-classes {num_classes} contradicts {self.path}: its output has {channels} channels"
            )
        if layout is None:
            raise CheckpointError(
                f"{self.path} has no segpipe metadata and its input shape {shape} does not show the "
                "layout; pass --input-layout nchw or nhwc"
            )
        dtype = "uint8" if self._in_dtype == np.uint8 else "float32"
        if dtype == "uint8":
            if mean is not None or std is not None:
                raise CheckpointError(
                    f"--mean/--std: {self.path} takes uint8 input, i.e. pixels as they are; "
                    "it cannot be fed normalised values"
                )
            feed = "taking uint8 pixels as they are (its input type)"
        else:
            if mean is None and std is None:
                raise CheckpointError(
                    f"{self.path} has no segpipe metadata, so how it wants its pixels normalised is "
                    "unknown; pass --mean and --std in pixel units (0-255), e.g. ImageNet (smp, torchvision): "
                    "--mean 123.675 116.28 103.53 --std 58.395 57.12 57.375; pixels as they are: "
                    "--mean 0 0 0 --std 1 1 1 (or export it with segpipe export-onnx)"
                )
            self._norm = check_normalization(mean, std, self.path)
            feed = f"taking float32 {normalization_note(*self._norm)}"
        names = tuple(f"class_{i}" for i in range(num_classes))
        self._assumed = (  # said once the input size is known (see __init__)
            f"{self.path} has no segpipe metadata: assuming its input {self._input.name!r} is {layout} "
            f"({'from --input-layout' if input_layout else 'from its shape'}) {feed}; "
            f"{num_classes} classes ({mode} mode, from {classes_from}) named class_0..class_{num_classes - 1}"
        )
        norm = {}
        if self._norm is not None:  # ModelInfo keeps mean/std of 0-1 pixels
            norm = {
                "mean": tuple(float(v) / 255 for v in self._norm[0]),
                "std": tuple(float(v) / 255 for v in self._norm[1]),
            }
        return ModelInfo(
            arch="unknown",
            encoder="unknown",
            num_classes=num_classes,
            mode=mode,
            layout=layout,
            input_dtype=dtype,
            output_kind=kind,
            class_names=names,
            **norm,
        )

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run([self._output.name], {self._input.name: x})[0]

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Batch N×H×W×3 RGB (uint8 or float32 0-255) -> logits N×C×H×W or class map N×H×W."""
        if self.session is None:
            raise RuntimeError(f"runner for {self.path} is closed")
        x = np.asarray(images)
        if self._in_dtype == np.uint8 and x.dtype != np.uint8:
            x = np.clip(np.rint(x), 0, 255).astype(np.uint8)
        elif self._norm is not None:  # a model without metadata: normalised as the user said
            mean, std = self._norm
            x = ((x.astype(np.float32) - mean) / std).astype(self._in_dtype, copy=False)
        elif x.dtype != self._in_dtype:
            x = x.astype(self._in_dtype)
        if not self._nhwc:
            x = x.transpose(0, 3, 1, 2)
        x = np.ascontiguousarray(x)
        n, b = len(x), self.fixed_batch
        if b is None or n == b:
            out = self._run(x)
        else:  # fixed batch: feed chunks of b, padding the last one
            parts = []
            for start in range(0, n, b):
                chunk = x[start : start + b]
                if len(chunk) < b:
                    pad = np.zeros((b - len(chunk), *chunk.shape[1:]), dtype=chunk.dtype)
                    parts.append(self._run(np.concatenate([chunk, pad]))[: len(chunk)])
                else:
                    parts.append(self._run(chunk))
            out = np.concatenate(parts)
        if out.dtype == np.float16:
            out = out.astype(np.float32)
        return out

    def close(self) -> None:
        self.session = None
