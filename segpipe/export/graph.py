"""The ONNX graph side of ``segpipe export-onnx``: input/output names and shapes, dynamic axes,
onnx-simplifier, the segpipe metadata props. No PyTorch here (``quantize`` and ``info`` use it too).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass
from typing import Any

from segpipe import __version__
from segpipe.errors import shorten
from segpipe.modelinfo import ModelInfo

INPUT_NAME = "input_1"
OUTPUT_NAME = "output"


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape (ints, or names of dynamic axes) and element type of a graph input or output."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str

    def __str__(self) -> str:
        return f"{self.name} {'x'.join(str(d) for d in self.shape)} {self.dtype}"


def dynamic_axes(output_kind: str, dynamic_batch: bool, dynamic_size: bool) -> dict[str, dict[int, str]]:
    """The ``dynamic_axes`` of the graph: batch and/or H and W of the NHWC input and the output."""
    axes_in: dict[int, str] = {}
    axes_out: dict[int, str] = {}
    hw_out = (1, 2) if output_kind == "labels" else (2, 3)
    if dynamic_batch:
        axes_in[0] = axes_out[0] = "batch"
    if dynamic_size:
        axes_in[1], axes_in[2] = "height", "width"
        axes_out[hw_out[0]], axes_out[hw_out[1]] = "height", "width"
    return {INPUT_NAME: axes_in, OUTPUT_NAME: axes_out} if axes_in else {}


def expected_output_shape(info: ModelInfo, batch: int, axes: dict[str, dict[int, str]]) -> list[int | str]:
    """The output's shape: N×C×H×W (logits, probs) or N×H×W (labels); dynamic axes by name."""
    width, height = info.input_size
    dims: list[int | str] = (
        [batch, height, width] if info.output_kind == "labels" else [batch, info.out_channels, height, width]
    )
    for index, name in axes.get(OUTPUT_NAME, {}).items():
        dims[index] = name
    return dims


def declare_output_shape(proto: Any, dims: list[int | str]) -> None:
    """Write the output's shape into the graph.

    The exporters' shape inference loses or garbles some axes (with a dynamic batch the TorchScript
    exporter declares logits ``batch×C×batch×Convoutput_dim_3``; dynamo writes expressions like
    ``32*((height - 1)//32) + 32``). The shape is known, and verification checks it against PyTorch.
    """
    out = next(o for o in proto.graph.output if o.name == OUTPUT_NAME)
    shape = out.type.tensor_type.shape
    del shape.dim[:]
    for d in dims:
        entry = shape.dim.add()
        if isinstance(d, str):
            entry.dim_param = d
        else:
            entry.dim_value = int(d)


def simplify(proto: Any) -> tuple[Any, str | None]:
    """onnx-simplifier; returns ``(model, None)``, or ``(the model unchanged, why)`` when it fails."""
    try:
        import onnxsim

        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            simplified, ok = onnxsim.simplify(proto)
    except Exception as e:  # the simplifier is an optimisation: keep the graph that works
        first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), "")
        return proto, f"{type(e).__name__}: {shorten(first)}"
    if not ok:
        return proto, "its check of the simplified graph failed"
    return simplified, None


def set_metadata(proto: Any, info: ModelInfo) -> None:
    """Write ``info`` as the model's ``metadata_props``.

    Older segpipe keys are replaced; onnx-simplifier's bookkeeping props (``onnxsim.*``: lists of
    every node it removed, kilobytes of text) are dropped, other props are kept.
    """
    props = info.to_metadata()
    keep = [
        (p.key, p.value)
        for p in proto.metadata_props
        if p.key not in props and not p.key.startswith("onnxsim.")
    ]
    del proto.metadata_props[:]
    for key, value in [*keep, *props.items()]:
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "segpipe"
    proto.producer_version = __version__
    proto.doc_string = (
        f"segpipe {info.arch}/{info.encoder}, {info.num_classes} classes; input {INPUT_NAME} "
        f"{info.layout} RGB 0-255 {info.input_dtype}; output {OUTPUT_NAME} {info.output_kind}"
    )


_ONNX_TYPES = {1: "float32", 2: "uint8", 6: "int32", 7: "int64", 10: "float16", 11: "float64", 9: "bool"}


def tensor_specs(values: Any) -> list[TensorSpec]:
    """TensorSpecs of ``graph.input`` / ``graph.output`` value infos."""
    specs = []
    for v in values:
        tt = v.type.tensor_type
        shape = tuple(d.dim_param if d.dim_param else int(d.dim_value) for d in tt.shape.dim)
        specs.append(TensorSpec(v.name, shape, _ONNX_TYPES.get(tt.elem_type, str(tt.elem_type))))
    return specs


def graph_inputs(proto: Any) -> list[Any]:
    """The real inputs of a graph (older exporters also list the initializers as inputs)."""
    init = {i.name for i in proto.graph.initializer}
    return [i for i in proto.graph.input if i.name not in init]
