"""The declared formats of segpipe's model files: :class:`ModelInfoFile` (checkpoint ``model_info``,
ONNX metadata props, the sidecar's ``metadata``) and :class:`SidecarFile` (``NAME.engine.json``).

Every field: a strict type, a range, a size bound. Readers return plain validated data; writers dump
through the same models, so segpipe never writes what it would refuse to read. Errors are one
:class:`~segpipe.errors.CheckpointError` line: ``SOURCE FIELD VALUE: PROBLEM``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)

from segpipe.errors import CheckpointError
from segpipe.schema import Range, has_controls, printable, shown

#: Largest JSON text read for one metadata value (class names of 65536 classes fit) and for a
#: sidecar; bigger is refused before parsing.
MAX_METADATA_BYTES = 8 << 20
MAX_SIDECAR_BYTES = 16 << 20
#: Largest class count a model file may declare (class maps are 16-bit, 65535 marks ignored pixels).
MAX_CLASSES = 65535
#: Largest width/height a model file may declare.
MAX_SIDE = 65536


def _ranged(kind: Any, rng: Range) -> Any:
    def check(v: Any) -> Any:
        problem = rng.problem(v)
        if problem is not None:
            raise ValueError(problem)
        return v

    return Annotated[kind, AfterValidator(check)]


def _no_controls(v: str) -> str:
    if has_controls(v):
        raise ValueError("control characters (ESC, CR, ...) are not allowed")
    return v


def text(max_len: int, min_len: int = 0) -> Any:
    """A string of bounded length without control characters."""
    return Annotated[StrictStr, Field(min_length=min_len, max_length=max_len), AfterValidator(_no_controls)]


Float = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Byte = _ranged(StrictInt, Range(0, 255))
Side = _ranged(StrictInt, Range(1, MAX_SIDE))
Name = text(200)
Short = text(100)
PathText = text(4096)

MODES = ("seg", "binary", "multilabel")
LAYOUTS = ("NCHW", "NHWC")
INPUT_DTYPES = ("float32", "uint8")
PRECISIONS = ("fp32", "fp16", "int8")
OUTPUT_KINDS = ("logits", "probs", "labels")


class DataSplitFile(BaseModel):
    """How training split its data (:func:`segpipe.data.heldout.split_record`)."""

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)
    kind: Literal["fraction", "own", "val_root"]
    source: Name = ""  # type: ignore[valid-type]
    seed: _ranged(StrictInt, Range(-(1 << 63), 1 << 64)) = 0  # type: ignore[valid-type]
    val_fraction: _ranged(Float, Range(0, 1)) = 0.0  # type: ignore[valid-type]
    images: _ranged(StrictInt, Range(0, 1 << 40)) = 0  # type: ignore[valid-type]
    val: _ranged(StrictInt, Range(0, 1 << 40)) = 0  # type: ignore[valid-type]
    digest: text(64) = ""  # type: ignore[valid-type]


class ModelInfoFile(BaseModel):
    """:class:`~segpipe.modelinfo.ModelInfo` as files hold it; unknown keys are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    arch: text(100, 1)  # type: ignore[valid-type]
    encoder: text(200, 1)  # type: ignore[valid-type]
    num_classes: _ranged(StrictInt, Range(1, MAX_CLASSES))  # type: ignore[valid-type]
    in_channels: _ranged(StrictInt, Range(1, 1024)) = 3  # type: ignore[valid-type]
    mode: Literal["seg", "binary", "multilabel"] = "seg"
    input_size: tuple[Side, Side] = (512, 512)  # type: ignore[valid-type]
    mean: Annotated[tuple[Float, ...], Field(min_length=1, max_length=1024)] = (0.485, 0.456, 0.406)
    std: Annotated[  # type: ignore[valid-type]
        tuple[_ranged(Float, Range(0, None, above=True)), ...], Field(min_length=1, max_length=1024)
    ] = (0.229, 0.224, 0.225)
    class_names: Annotated[tuple[Name, ...], Field(max_length=MAX_CLASSES)] = ()  # type: ignore[valid-type]
    colors: Annotated[tuple[tuple[Byte, Byte, Byte], ...], Field(max_length=MAX_CLASSES)] = ()  # type: ignore[valid-type]
    output_stride: _ranged(StrictInt, Range(1, 1024)) = 32  # type: ignore[valid-type]
    ignore_index: _ranged(StrictInt, Range(0, 65535)) = 255  # type: ignore[valid-type]
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    input_dtype: Literal["float32", "uint8"] = "float32"
    precision: Literal["fp32", "fp16", "int8"] = "fp32"
    output_kind: Literal["logits", "probs", "labels"] = "logits"
    min_side: _ranged(StrictInt, Range(0, MAX_SIDE)) = 0  # type: ignore[valid-type]
    segpipe_version: Short = "unknown"  # type: ignore[valid-type]
    data_split: DataSplitFile | None = None

    @model_validator(mode="after")
    def _one_per_class(self) -> ModelInfoFile:
        for name in ("class_names", "colors"):
            items = getattr(self, name)
            if items and len(items) != self.num_classes:
                raise ValueError(
                    f"{name}: {len(items)} {'entry' if len(items) == 1 else 'entries'} for {self.num_classes} classes (one per class)"
                )
        return self


Dims = Annotated[tuple[_ranged(StrictInt, Range(0, 1 << 31)), ...], Field(max_length=8)]  # type: ignore[valid-type]


class ProfileFile(BaseModel):
    """One input's min / opt / max dims in the sidecar's ``profile``."""

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)
    min: Dims  # type: ignore[valid-type]
    opt: Dims  # type: ignore[valid-type]
    max: Dims  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _same_rank(self) -> ProfileFile:
        if not len(self.min) == len(self.opt) == len(self.max):
            raise ValueError("min, opt and max have different numbers of dims")
        if any(not a <= b <= c for a, b, c in zip(self.min, self.opt, self.max, strict=True)):
            raise ValueError("each dim must satisfy min <= opt <= max")
        return self


class TensorFile(BaseModel):
    """One engine input or output in the sidecar."""

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)
    name: Name  # type: ignore[valid-type]
    dtype: Short  # type: ignore[valid-type]
    dims: Annotated[tuple[StrictInt | Name | None, ...], Field(max_length=8)]  # type: ignore[valid-type]


class SidecarFile(BaseModel):
    """``NAME.engine.json``: what the plan cannot say (see :mod:`segpipe.tensorrt.sidecar`)."""

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)
    format: Short = "segpipe-engine/1"  # type: ignore[valid-type]
    engine: PathText = ""  # type: ignore[valid-type]
    onnx: PathText = ""  # type: ignore[valid-type]
    metadata: Annotated[
        dict[Name, Annotated[StrictStr, Field(max_length=MAX_METADATA_BYTES)]],  # type: ignore[valid-type]
        Field(max_length=256),
    ] = {}
    tensorrt_version: Short | None = None  # type: ignore[valid-type]
    gpu_name: Name | None = None  # type: ignore[valid-type]
    compute_capability: Short | None = None  # type: ignore[valid-type]
    precision: Literal["fp32", "fp16", "int8"] | None = None
    onnx_precision: Literal["fp32", "fp16", "int8"] | None = None
    fp16_method: Short | None = None  # type: ignore[valid-type]
    strongly_typed: StrictBool = False
    profile: Annotated[dict[Name, ProfileFile], Field(max_length=64)] = {}  # type: ignore[valid-type]
    inputs: Annotated[tuple[TensorFile, ...], Field(max_length=64)] = ()
    outputs: Annotated[tuple[TensorFile, ...], Field(max_length=64)] = ()
    workspace_mib: _ranged(StrictInt, Range(0, 1 << 31)) | None = None  # type: ignore[valid-type]
    opt_level: _ranged(StrictInt, Range(0, 5)) | None = None  # type: ignore[valid-type]
    builder: Short | None = None  # type: ignore[valid-type]
    segpipe_version: Short | None = None  # type: ignore[valid-type]
    created: Short | None = None  # type: ignore[valid-type]


# ---- one line per failure ----------------------------------------------------------------------

_PROBLEMS = {
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "finite_number": "expected a finite number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "string_type": "expected a text value",
    "tuple_type": "expected a list",
    "list_type": "expected a list",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "missing": "missing",
}


def problem_text(err: Mapping[str, Any]) -> str:
    """The few words saying what is wrong in one pydantic error (``expected a whole number``)."""
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    if kind in _PROBLEMS:
        return _PROBLEMS[kind]
    if kind == "literal_error":
        return f"use one of {ctx.get('expected', '')}".replace("'", "")
    if kind in ("too_long", "too_short"):
        bound = ctx.get("max_length") if kind == "too_long" else ctx.get("min_length")
        return f"{'at most' if kind == 'too_long' else 'at least'} {bound} entries, got {ctx.get('actual_length', '?')}"
    if kind in ("string_too_long", "string_too_short"):
        bound = ctx.get("max_length") if kind == "string_too_long" else ctx.get("min_length")
        word = "longer than" if kind == "string_too_long" else "shorter than"
        return f"{word} {bound} characters" if kind == "string_too_long" else "must not be empty"
    msg = str(err.get("msg", kind))
    return printable(msg.removeprefix("Value error, ").removeprefix("Assertion failed, "))[:120]


def _field_name(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after[check()]", "function-after[_no_controls()]", "tuple[...]"):
            continue
        else:
            out += ("." if out else "") + printable(str(part))[:60]
    return out


def error_line(exc: ValidationError, source: str) -> str:
    """``SOURCE FIELD VALUE: PROBLEM (and N more problems)`` for a pydantic error."""
    errors = exc.errors(include_url=False)
    err = errors[0]
    field = _field_name(tuple(err.get("loc", ())))
    problem = problem_text(err)
    value = "" if err.get("type") == "missing" or not field else f" {shown(err.get('input'))}"
    extra = len(errors) - 1
    more = f" (and {extra} more problem{'s' if extra > 1 else ''})" if extra else ""
    head = f"{source} {field}".rstrip() if field else source
    return f"{head}{value}: {problem}{more}"


def load_json(raw: str | bytes, source: str, limit: int) -> Any:
    """``json.loads`` of at most ``limit`` bytes; malformed, too deep or too big: one line."""
    size = len(raw)
    if size > limit:
        raise CheckpointError(f"{source}: {size} bytes, more than the {limit} bytes allowed; refused")
    try:
        return json.loads(raw)
    except RecursionError:
        raise CheckpointError(f"{source}: JSON nested too deeply") from None
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{source}: not valid JSON ({printable(str(e))[:100]})") from None


def read_model_info(data: Any, source: str) -> dict[str, Any]:
    """Validate a model description (a mapping) -> the fields it sets, as tuples and plain types."""
    if not isinstance(data, Mapping):
        raise CheckpointError(f"{source}: expected a mapping, got {type(data).__name__}")
    try:
        model = ModelInfoFile.model_validate(dict(data))
    except ValidationError as e:
        raise CheckpointError(error_line(e, source)) from None
    fields = {name: getattr(model, name) for name in model.model_fields_set}
    if isinstance(fields.get("data_split"), BaseModel):
        fields["data_split"] = fields["data_split"].model_dump(mode="json")
    return fields


def read_metadata(props: Mapping[str, str], source: str) -> dict[str, Any] | None:
    """The ``segpipe.*`` ONNX metadata props -> validated fields (``None``: no segpipe description)."""
    data: dict[str, Any] = {}
    for key, raw in props.items():
        if not isinstance(key, str) or not key.startswith("segpipe."):
            continue
        name = key[len("segpipe.") :]
        if name not in ModelInfoFile.model_fields:
            continue
        data[name] = load_json(raw, f"{source} {printable(key)[:60]}", MAX_METADATA_BYTES)
    if "arch" not in data or "num_classes" not in data:
        return None
    return read_model_info(data, source)


def dump_model_info(fields: Mapping[str, Any], source: str = "model description") -> dict[str, Any]:
    """A model description as JSON-ready data, validated by the schema that reads it back."""
    try:
        return ModelInfoFile.model_validate(dict(fields)).model_dump(mode="json")
    except ValidationError as e:
        raise CheckpointError(error_line(e, source)) from None


def read_sidecar_text(raw: str | bytes, source: str) -> dict[str, Any]:
    """Parse and validate a sidecar's JSON text -> its known fields as JSON-ready data."""
    data = load_json(raw, source, MAX_SIDECAR_BYTES)
    if not isinstance(data, dict):
        raise CheckpointError(f"{source}: holds a {type(data).__name__}, not a JSON object")
    try:
        return SidecarFile.model_validate(data).model_dump(mode="json")
    except ValidationError as e:
        raise CheckpointError(error_line(e, source)) from None


def dump_sidecar(sidecar: Mapping[str, Any], source: str = "engine sidecar") -> dict[str, Any]:
    """A sidecar as JSON-ready data, validated by the schema that reads it back."""
    try:
        return SidecarFile.model_validate(dict(sidecar)).model_dump(mode="json")
    except ValidationError as e:
        raise CheckpointError(error_line(e, source)) from None
