"""OpenVINO backend: runs an ``.onnx`` model (or an OpenVINO IR ``.xml`` + ``.bin``) on the CPU.

It reads the same files as the ONNX Runtime runner and keeps every promise of it (it is a
subclass: segpipe metadata, or ``--mean/--std/--input-layout`` for a model without it, NHWC or
NCHW, uint8 or float input, fixed batch looped); only the session differs. OpenVINO reads the
ONNX metadata props into the model's ``framework`` runtime info (kept in an IR saved from it).

Precision: FP32 layers run in FP32 (``INFERENCE_PRECISION_HINT f32``; OpenVINO's own default on
CPUs with AMX/AVX-512-BF16 is bf16, which would change the masks); a Q/DQ (INT8) model runs its
quantized convolutions in INT8 (OpenVINO's low-precision transformations), the rest in FP32.
Install: ``pip install "segpipe[openvino]"``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from segpipe._optional import require
from segpipe.errors import CheckpointError, ConfigError, shorten
from segpipe.progress import Reporter
from segpipe.runtime.onnxruntime import OnnxRunner

#: OpenVINO element types -> the ONNX Runtime spelling the shared code reads.
_TYPES = {
    "f32": "tensor(float)",
    "f16": "tensor(float16)",
    "u8": "tensor(uint8)",
    "i64": "tensor(int64)",
    "i32": "tensor(int32)",
}


class _Port(NamedTuple):
    """An input or output as :class:`OnnxRunner` reads them: name, shape (ints, None where dynamic), type."""

    name: str
    shape: list[int | None]
    type: str


def _port(p: Any, index: int) -> _Port:
    names = sorted(p.get_names())
    shape = [d.get_length() if d.is_static else None for d in p.get_partial_shape()]
    kind = p.get_element_type().get_type_name()
    return _Port(names[0] if names else f"#{index}", shape, _TYPES.get(kind, f"tensor({kind})"))


def ov_device(device: str) -> str:
    """OpenVINO's device for ``--device``: ``auto`` and ``cpu`` are its CPU plugin."""
    spec = (device or "auto").strip().lower()
    if spec in ("auto", "cpu"):
        return "CPU"
    if spec == "cuda" or spec.startswith("cuda:"):
        raise ConfigError(
            f"--device {device}: --runtime openvino runs on the CPU; for a CUDA GPU use "
            "--runtime onnxruntime (onnxruntime-gpu) or a TensorRT engine"
        )
    raise ConfigError(f"--device {device!r} is not one of auto, cpu (with --runtime openvino)")


class OpenVinoRunner(OnnxRunner):
    """An ONNX model (or OpenVINO IR) run with OpenVINO on the CPU; arguments as :class:`OnnxRunner`
    (``threads``: OpenVINO's inference threads, 0 its default: one per core)."""

    backend = "openvino"

    def _open(self, device: str, threads: int, reporter: Reporter | None) -> tuple[list, list, dict]:
        ov = require("openvino", "--runtime openvino")
        target = ov_device(device)
        from segpipe.runtime.cpu import openvino_int8_note

        self.int8_note = openvino_int8_note(self.path) if self.path.suffix.lower() == ".onnx" else ""
        if self.int8_note and reporter is not None:
            reporter.warn(self.int8_note)
        if self.path.suffix.lower() == ".xml" and not self.path.with_suffix(".bin").is_file():
            raise CheckpointError(
                f"{self.path}: OpenVINO IR needs its weights {self.path.with_suffix('.bin').name} next to it"
            )
        core = ov.Core()
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        try:
            model = core.read_model(str(self.path))
            self.session = core.compile_model(model, target, config)
        except Exception as e:
            lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
            said = [ln for ln in lines if not ln.startswith("Exception from")]  # not OpenVINO's stack
            first = (said or lines or ["corrupt"])[0]
            raise CheckpointError(
                f"{self.path} is not a model OpenVINO can load ({type(e).__name__}: {shorten(first)})"
            ) from e
        self._request = self.session.create_infer_request()
        self.providers = [target]
        props: dict[str, str] = {}
        if model.has_rt_info(["framework"]):
            framework = model.get_rt_info()["framework"]
            for key in framework.keys():
                if str(key).startswith("segpipe."):
                    props[str(key)] = framework[key].astype(str)
        inputs = [_port(p, i) for i, p in enumerate(model.inputs)]
        outputs = [_port(p, i) for i, p in enumerate(model.outputs)]
        self._ports = {p.name: i for i, p in enumerate(outputs)}
        return inputs, outputs, props

    def _run(self, x: np.ndarray) -> np.ndarray:
        self._request.infer({0: x} if self._input.name.startswith("#") else {self._input.name: x})
        out = self._request.get_output_tensor(self._ports[self._output.name]).data
        return np.array(out, copy=True)  # the request's buffer is reused by the next call

    def close(self) -> None:
        self._request = None
        self.session = None
