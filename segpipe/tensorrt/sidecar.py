"""The ``NAME.engine.json`` sidecar written beside every engine ``segpipe build-trt`` makes.

An engine file is the plain serialized TensorRT plan (``trtexec --loadEngine`` reads it); what the
plan cannot say lives in the sidecar: the ONNX model's metadata props (the ``segpipe.*`` keys of
:meth:`ModelInfo.to_metadata`, with ``segpipe.precision`` set to the engine's precision), the
TensorRT version and GPU that built it (an engine only runs on the same TensorRT version and GPU
model), the precision and how it was obtained, and the optimisation profile. Everything here is
plain JSON and is written and read without tensorrt.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from segpipe import __version__
from segpipe.errors import CheckpointError
from segpipe.modelinfo import ModelInfo
from segpipe.tensorrt.shapes import ProfileShape, TensorSpec
from segpipe.utils import atomic_write_text

SIDECAR_FORMAT = "segpipe-engine/1"


def sidecar_path(engine_path: str | Path) -> Path:
    """``m.engine`` -> ``m.engine.json`` (also ``m.bin`` -> ``m.bin.json``)."""
    p = Path(engine_path)
    return p.with_name(p.name + ".json")


def engine_sidecar(
    *,
    engine_path: str | Path,
    onnx_path: str | Path,
    metadata: Mapping[str, str],
    tensorrt_version: str,
    gpu_name: str,
    compute_capability: str,
    precision: str,
    onnx_precision: str,
    fp16_method: str,
    strongly_typed: bool,
    profile: Mapping[str, ProfileShape],
    inputs: Sequence[TensorSpec] = (),
    outputs: Sequence[TensorSpec] = (),
    workspace_mib: int | None = None,
    opt_level: int | None = None,
    builder: str = "python",
) -> dict[str, Any]:
    """The sidecar as a JSON-ready dict (pure: reads nothing, needs no tensorrt).

    ``metadata`` is the ONNX ``metadata_props`` (str -> str); ``segpipe.precision`` in it is set to
    the engine's ``precision``, the ONNX graph's own precision is kept as ``onnx_precision``.
    ``fp16_method`` is one of ``as-is``, ``builder-flag``, ``autocast`` (see ``Fp16Plan``).
    ``builder`` says what built the engine: ``python`` (TensorRT Python API) or ``trtexec``.
    """
    meta = dict(metadata)
    if any(k.startswith("segpipe.") for k in meta):
        meta["segpipe.precision"] = json.dumps(precision)
    return {
        "format": SIDECAR_FORMAT,
        "engine": Path(engine_path).name,
        "onnx": str(onnx_path),
        "metadata": meta,
        "tensorrt_version": tensorrt_version,
        "gpu_name": gpu_name,
        "compute_capability": compute_capability,
        "precision": precision,
        "onnx_precision": onnx_precision,
        "fp16_method": fp16_method,
        "strongly_typed": bool(strongly_typed),
        "profile": {name: p.to_dict() for name, p in profile.items()},
        "inputs": [{"name": t.name, "dtype": t.dtype, "dims": list(t.dims)} for t in inputs],
        "outputs": [{"name": t.name, "dtype": t.dtype, "dims": list(t.dims)} for t in outputs],
        "workspace_mib": workspace_mib,
        "opt_level": opt_level,
        "builder": builder,
        "segpipe_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def write_sidecar(engine_path: str | Path, sidecar: Mapping[str, Any]) -> Path:
    """Write the sidecar beside the engine, atomically, through the schema that reads it back
    (:class:`segpipe.schema.files.SidecarFile`); returns its path."""
    from segpipe.schema.files import dump_sidecar

    path = sidecar_path(engine_path)
    data = dump_sidecar(sidecar, f"{path}")
    sidecar_model_info(data, path)  # the metadata it carries reads back too
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")
    return path


def read_sidecar(engine_path: str | Path) -> dict[str, Any] | None:
    """The sidecar of an engine, or ``None`` when there is none.

    Size-bounded, parsed and validated field by field (:class:`segpipe.schema.files.SidecarFile`):
    malformed JSON, a wrong type, an out-of-range or oversized value is one
    :class:`~segpipe.errors.CheckpointError` line naming the file, the field and the value. Known
    fields only, as JSON-ready data (lists, str, int).
    """
    from segpipe.schema.files import MAX_SIDECAR_BYTES, read_sidecar_text

    path = sidecar_path(engine_path)
    if not path.is_file():
        return None
    try:
        size = path.stat().st_size
        if size > MAX_SIDECAR_BYTES:
            raise CheckpointError(
                f"{path}: {size} bytes, more than the {MAX_SIDECAR_BYTES} a sidecar holds; refused"
            )
        raw = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"engine sidecar {path}: cannot read it ({e.strerror or e})") from None
    return read_sidecar_text(raw, str(path))


def sidecar_model_info(
    sidecar: Mapping[str, Any] | None, path: str | Path = "engine sidecar"
) -> ModelInfo | None:
    """The :class:`ModelInfo` a sidecar carries (``None`` when it has no segpipe metadata); its
    metadata is validated like an ONNX model's (one line naming ``path``, the field, the value)."""
    if not sidecar:
        return None
    meta = sidecar.get("metadata") or {}
    if not isinstance(meta, Mapping):
        raise CheckpointError(f"{path} metadata: expected a mapping of strings")
    return ModelInfo.from_metadata(dict(meta), f"{path}: metadata")


def minimal_model_info(
    input_shape: Sequence[int], input_dtype: str, output_shape: Sequence[int]
) -> ModelInfo:
    """A best-effort :class:`ModelInfo` for an engine or ONNX model without segpipe metadata.

    Assumes an NHWC image input and reads the class count from an N×C×H×W output (a N×H×W class
    map gives no class count: ``num_classes`` is then 0; one channel means ``binary`` mode).
    Architecture and encoder are ``unknown``.
    """
    n_h_w_c = list(input_shape) + [0] * (4 - len(input_shape))
    labels = len(output_shape) == 3
    channels = 0 if labels else int(output_shape[1]) if len(output_shape) > 1 else 0
    return ModelInfo(
        arch="unknown",
        encoder="unknown",
        num_classes=2 if channels == 1 else max(channels, 0),
        mode="binary" if channels == 1 else "seg",
        in_channels=int(n_h_w_c[3]) or 3,
        input_size=(int(n_h_w_c[2]), int(n_h_w_c[1])),
        layout="NHWC",
        input_dtype="uint8" if input_dtype == "uint8" else "float32",
        output_kind="labels" if labels else "logits",
    )


def profile_text(profile: Mapping[str, Any]) -> str:
    """A sidecar's optimisation profile in one line, per input: ``input_1 1x640x1280x3 NHWC``
    (static) or ``input_1 min 1x.. opt 4x.. max 8x.. NHWC`` (the layout once, not after each shape)."""
    from segpipe.units import shape_text

    parts = []
    for name, p in profile.items():
        dims = [shape_text(p.get(k, [])) for k in ("min", "opt", "max")]
        layout = " NHWC" if len(p.get("opt", [])) == 4 else ""
        shape = dims[1] if dims[0] == dims[1] == dims[2] else f"min {dims[0]} opt {dims[1]} max {dims[2]}"
        parts.append(f"{name} {shape}{layout}")
    return ", ".join(parts)
