"""Input shapes and the optimisation profile of ``segpipe build-trt``.

Shape strings follow trtexec: ``input_1:1x640x1280x3[,name:dims...]``, N×H×W×C for segpipe models.
The profile (min / opt / max per input) is derived the way trtexec does it: when only the opt
shapes are given (``--shapes`` or ``--opt-shapes``), min and max are set to the same values; when
min or max is given, all three must be. An input whose ONNX dims are all fixed needs no shape; a
dynamic input (``dim_param``) with no shape given falls back to the size recorded in the model's
:class:`~segpipe.modelinfo.ModelInfo` (batch 1, ``input_size``), or is a one-line error.

References (read, not tested here against a real trtexec):

* ``trtexec --help`` of TensorRT 10.5: "All three of min, opt and max shapes must be supplied.
  However, if only opt shapes is supplied then it will be expanded so that min shapes and max
  shapes are set to the same values as opt shapes. Input names can be wrapped with escaped single
  quotes (ex: 'Input:0')." Example spec ``input0:1x3x256x256,input1:1x3x128x128``.
* ONNX ``TensorShapeProto.Dimension``: ``dim_value`` (fixed) or ``dim_param`` (symbolic).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from segpipe.errors import ConfigError, close_matches
from segpipe.modelinfo import ModelInfo
from segpipe.options.shapes import (  # parsed below the layers, in options/ (the flags need them)
    EXAMPLE,
    Shapes,
    ShapesArg,
    format_dims,
    format_shapes,
    normalize_shapes,
    parse_shapes,
    quote_name,
)
from segpipe.utils import check_divisible

__all__ = [
    "DEFAULT_MAX_BATCH",
    "EXAMPLE",
    "ProfileShape",
    "Shapes",
    "ShapesArg",
    "TensorSpec",
    "derive_profile",
    "format_dims",
    "format_shapes",
    "normalize_shapes",
    "onnx_io",
    "parse_shapes",
    "profile_notes",
]

#: Largest batch of the profile derived for a dynamic batch axis when no shapes are given.
DEFAULT_MAX_BATCH = 8


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output as the ONNX file declares it.

    Attributes:
        name: tensor name, e.g. ``input_1``.
        dims: one entry per axis: an ``int`` when fixed, the ``dim_param`` string when symbolic,
            ``None`` when unknown.
        dtype: numpy dtype name, e.g. ``float32`` or ``uint8``.
    """

    name: str
    dims: tuple[int | str | None, ...]
    dtype: str

    @property
    def dynamic_axes(self) -> list[int]:
        """Indices of the axes that are not fixed."""
        return [i for i, d in enumerate(self.dims) if not isinstance(d, int) or d <= 0]

    def describe(self) -> str:
        """``1x?x?x3`` style text (symbolic axes keep their name: ``batchx640x1280x3``)."""
        return "x".join(str(d) if isinstance(d, int) and d > 0 else (d or "?") for d in self.dims)


@dataclass(frozen=True)
class ProfileShape:
    """The min / opt / max dims of one input in a TensorRT optimisation profile."""

    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    @property
    def is_static(self) -> bool:
        """True when min == opt == max (the engine accepts exactly one shape)."""
        return self.min == self.opt == self.max

    def to_dict(self) -> dict[str, list[int]]:
        """JSON-ready ``{"min": [...], "opt": [...], "max": [...]}``."""
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}

    def describe(self) -> str:
        """``1x640x1280x3`` when static, else ``min 1x.. opt 2x.. max 4x..``."""
        if self.is_static:
            return format_dims(self.opt)
        return f"min {format_dims(self.min)} opt {format_dims(self.opt)} max {format_dims(self.max)}"


def onnx_io(model) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """The graph inputs (initializers excluded) and outputs of an ``onnx.ModelProto``."""
    from onnx import helper

    def spec(value_info) -> TensorSpec:
        ttype = value_info.type.tensor_type
        dims: list[int | str | None] = []
        for d in ttype.shape.dim:
            if d.HasField("dim_value"):
                dims.append(int(d.dim_value))
            elif d.HasField("dim_param"):
                dims.append(d.dim_param)
            else:
                dims.append(None)
        try:
            dtype = helper.tensor_dtype_to_np_dtype(ttype.elem_type).name
        except Exception:
            dtype = f"onnx-type-{ttype.elem_type}"
        return TensorSpec(value_info.name, tuple(dims), dtype)

    initializers = {init.name for init in model.graph.initializer}
    inputs = [spec(v) for v in model.graph.input if v.name not in initializers]
    outputs = [spec(v) for v in model.graph.output]
    return inputs, outputs


def derive_profile(
    inputs: Sequence[TensorSpec],
    *,
    shapes: Mapping[str, tuple[int, ...]] | None = None,
    min_shapes: Mapping[str, tuple[int, ...]] | None = None,
    opt_shapes: Mapping[str, tuple[int, ...]] | None = None,
    max_shapes: Mapping[str, tuple[int, ...]] | None = None,
    info: ModelInfo | None = None,
    source: str = "the ONNX model",
    batch: int | None = None,
    max_batch: int | None = None,
) -> dict[str, ProfileShape]:
    """Work out min / opt / max dims for every input (see the module docstring for the rules).

    ``shapes`` plays the role of trtexec's ``--shapes`` (the opt shape, min = max = opt unless
    given). Fixed ONNX axes must match what is given; with a segpipe ``info`` the H and W of every
    profile shape must be multiples of the model's output stride. An input with a dynamic batch
    axis (axis 0 of a 4-D input) and no shapes given gets batch min 1, opt ``batch`` (default 1),
    max ``max_batch`` (default :data:`DEFAULT_MAX_BATCH`); ``batch``/``max_batch`` for an input
    whose shapes are given or whose batch axis is fixed are an error. Errors are one line naming
    the flag, the input and the value.
    """
    given = {
        "--shapes": dict(shapes or {}),
        "--min-shapes": dict(min_shapes or {}),
        "--opt-shapes": dict(opt_shapes or {}),
        "--max-shapes": dict(max_shapes or {}),
    }
    names = [i.name for i in inputs]
    for flag, spec in given.items():
        for name, dims in spec.items():
            if name not in names:
                raise ConfigError(
                    f"{flag} {quote_name(name)}:{format_dims(dims)}: {source} has no input named {name!r}; "
                    f"its inputs are {', '.join(names) or '(none)'}{close_matches(name, names)}"
                )
    profile: dict[str, ProfileShape] = {}
    for inp in inputs:
        name = inp.name
        s, o = given["--shapes"].get(name), given["--opt-shapes"].get(name)
        if s is not None and o is not None and s != o:
            raise ConfigError(
                f"--shapes {name}:{format_dims(s)} and --opt-shapes {name}:{format_dims(o)} disagree; "
                "give only one of them"
            )
        opt_flag = "--opt-shapes" if o is not None else "--shapes"
        opt = o if o is not None else s
        lo, hi = given["--min-shapes"].get(name), given["--max-shapes"].get(name)
        if opt is None and (lo is not None or hi is not None):
            raise ConfigError(f"--min-shapes/--max-shapes for {name} need --opt-shapes (or --shapes) too")
        if opt is not None and (lo is None) != (hi is None):
            raise ConfigError(
                f"input {name}: give both --min-shapes and --max-shapes, or neither "
                "(then min = max = opt, as trtexec does)"
            )
        batch_axis = len(inp.dims) == 4 and 0 in inp.dynamic_axes
        if (batch is not None or max_batch is not None) and (opt is not None or not batch_axis):
            flag = "--batch" if batch is not None else "--max-batch"
            why = "its shapes are given" if opt is not None else f"its batch axis is fixed ({inp.describe()})"
            raise ConfigError(
                f"{flag} {batch if batch is not None else max_batch}: input {name} of {source} takes no "
                f"batch range: {why}; give --min-shapes/--opt-shapes/--max-shapes instead"
            )
        if opt is None:
            opt_flag = "default"
            opt = _default_shape(inp, info, source)
            if batch_axis:
                n_opt = int(batch or 1)
                n_max = max(int(max_batch or DEFAULT_MAX_BATCH), n_opt)
                lo, opt, hi = (1, *opt[1:]), (n_opt, *opt[1:]), (n_max, *opt[1:])
        lo = lo if lo is not None else opt
        hi = hi if hi is not None else opt
        for flag, dims in (("--min-shapes", lo), (opt_flag, opt), ("--max-shapes", hi)):
            _check_against_onnx(inp, dims, flag, source)
        if not all(a <= b <= c for a, b, c in zip(lo, opt, hi, strict=True)):
            raise ConfigError(
                f"input {name}: min {format_dims(lo)} <= opt {format_dims(opt)} <= max {format_dims(hi)} "
                "must hold on every axis"
            )
        if info is not None and len(opt) == 4:
            h_axis, w_axis = (1, 2) if info.layout.upper() == "NHWC" else (2, 3)
            checks = [(opt_flag, opt)] + [
                (f, d) for f, d in (("--min-shapes", lo), ("--max-shapes", hi)) if d != opt
            ]
            for flag, dims in checks:
                what = f"{flag} {name}:{format_dims(dims)} has W H"
                check_divisible(dims[w_axis], dims[h_axis], info.output_stride, what)
        profile[name] = ProfileShape(tuple(lo), tuple(opt), tuple(hi))
    return profile


def profile_notes(
    inputs: Sequence[TensorSpec],
    profile: Mapping[str, ProfileShape],
    given: Mapping[str, Mapping[str, Sequence[int]] | None],
) -> list[str]:
    """One line per input whose dynamic batch range was chosen by :func:`derive_profile`."""
    named = {name for spec in given.values() for name in (spec or {})}
    notes = []
    for inp in inputs:
        p = profile.get(inp.name)
        if p is None or inp.name in named or len(inp.dims) != 4 or 0 not in inp.dynamic_axes:
            continue
        notes.append(
            f"{inp.name} has a dynamic batch axis: engine profile batch min {p.min[0]}, opt {p.opt[0]}, "
            f"max {p.max[0]} ({format_dims(p.min)} to {format_dims(p.max)}; change with --batch/--max-batch)"
        )
    return notes


def _check_against_onnx(inp: TensorSpec, dims: tuple[int, ...], flag: str, source: str) -> None:
    if len(dims) != len(inp.dims):
        raise ConfigError(
            f"{flag} {inp.name}:{format_dims(dims)}: input {inp.name} of {source} has {len(inp.dims)} "
            f"axes ({inp.describe()}), not {len(dims)}"
        )
    for axis, (want, got) in enumerate(zip(inp.dims, dims, strict=True)):
        if isinstance(want, int) and want > 0 and want != got:
            raise ConfigError(
                f"{flag} {inp.name}:{format_dims(dims)}: axis {axis} of {inp.name} is fixed to {want} "
                f"in {source} ({inp.describe()})"
            )


def _default_shape(inp: TensorSpec, info: ModelInfo | None, source: str) -> tuple[int, ...]:
    """The shape used when none is given: the fixed ONNX dims, filled from ModelInfo if dynamic."""
    if not inp.dynamic_axes:
        return tuple(int(d) for d in inp.dims)  # type: ignore[arg-type]
    if info is not None and len(inp.dims) == 4:
        w, h = info.input_size
        fill = (1, h, w, info.in_channels) if info.layout.upper() == "NHWC" else (1, info.in_channels, h, w)
        return tuple(d if isinstance(d, int) and d > 0 else f for d, f in zip(inp.dims, fill, strict=True))
    raise ConfigError(
        f"{source}: input {inp.name} has dynamic axes ({inp.describe()}) and no segpipe metadata to "
        f"fill them; give the shape with --shapes {inp.name}:NxHxWxC, e.g. {inp.name}:1x640x1280x3"
    )
