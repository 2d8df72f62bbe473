"""A Triton Inference Server model repository from a segpipe ONNX model or TensorRT engine.

Layout (Triton's model repository)::

    REPO/NAME/config.pbtxt     backend, max_batch_size, dynamic batching, input and output
    REPO/NAME/labels.txt       one class name per line (the output's label_filename)
    REPO/NAME/1/model.onnx     onnxruntime backend    (or 1/model.plan: tensorrt backend)

The configuration is built as Triton's own ``inference.ModelConfig`` protobuf message (shipped in
``tritonclient``: ``tritonclient.grpc.model_config_pb2``), written in protobuf text format, then
read back with a strict ``text_format.Parse`` (an unknown field fails) and its tensors compared
with the model file's (ARCHITECTURE.md convention 17: the consumer's schema is the judge).

Dims follow the model: with a dynamic batch axis, ``max_batch_size`` > 0, dims without the batch
axis and ``dynamic_batching``; with a fixed batch, ``max_batch_size: 0`` and the full shape (Triton
cannot batch a fixed-batch model). Dynamic H and W are ``-1``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segpipe._optional import require
from segpipe.deploy.model import ModelFile, copy_model, labels_text
from segpipe.errors import ConfigError, SegpipeError
from segpipe.export.graph import TensorSpec
from segpipe.utils import atomic_write_text, ensure_dir

#: numpy / ONNX element type names -> Triton data types.
TRITON_TYPES = {
    "float32": "TYPE_FP32",
    "float16": "TYPE_FP16",
    "uint8": "TYPE_UINT8",
    "int8": "TYPE_INT8",
    "int32": "TYPE_INT32",
    "int64": "TYPE_INT64",
    "bool": "TYPE_BOOL",
}
BACKENDS = {"onnx": ("onnxruntime", "model.onnx"), "engine": ("tensorrt", "model.plan")}
INSTANCE_KINDS = ("auto", "gpu", "cpu")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


@dataclass
class TritonResult:
    """What :func:`write_triton_repo` wrote."""

    model_dir: Path
    config: Path
    model: Path
    labels: Path
    max_batch_size: int
    notes: list[str] = field(default_factory=list)


def model_config_pb2() -> Any:
    """Triton's ``model_config_pb2`` (from tritonclient; one line naming the install otherwise)."""
    return require("tritonclient.grpc.model_config_pb2", "a Triton model configuration")


def check_name(name: str, source: Path | None = None) -> str:
    """A Triton model name: a folder name of letters, digits, ``_ . -`` (one line otherwise);
    ``source``: the model file the name was taken from (no ``--name`` given)."""
    if not _NAME.match(name) or name in (".", ".."):
        what = f"{source}: its name {name!r}" if source is not None else f"--name {name!r}"
        raise ConfigError(
            f"{what}: a Triton model name is a folder name of letters, digits, '_', '.' and "
            f"'-' (at most 128, not starting with '.' or '-'){'; give --name NAME' if source else ''}"
        )
    return name


def _dtype(spec: TensorSpec, source: Path) -> str:
    if spec.dtype not in TRITON_TYPES:
        raise ConfigError(f"{source}: {spec.name} has element type {spec.dtype}, which Triton cannot carry")
    return TRITON_TYPES[spec.dtype]


def build_config(
    model: ModelFile,
    name: str,
    max_batch_size: int = 8,
    queue_delay_us: int = 100,
    instance_kind: str = "auto",
) -> Any:
    """The ``ModelConfig`` message for ``model`` served as ``name`` (see the module docstring)."""
    pb = model_config_pb2()
    if max_batch_size < 1:
        raise ConfigError(f"--max-batch {max_batch_size}: must be at least 1")
    if queue_delay_us < 0:
        raise ConfigError(f"--queue-delay-us {queue_delay_us}: must be 0 or more")
    if instance_kind not in INSTANCE_KINDS:
        raise ConfigError(f"--instance-kind {instance_kind!r}: use one of {', '.join(INSTANCE_KINDS)}")
    backend, filename = BACKENDS[model.kind]
    cfg = pb.ModelConfig(name=name, backend=backend, default_model_filename=filename)
    batched = model.dynamic_batch
    if batched:
        top = model.max_batch if model.max_batch is not None else max_batch_size
        cfg.max_batch_size = min(max_batch_size, top)
        cfg.dynamic_batching.max_queue_delay_microseconds = queue_delay_us
    for spec, target, labels in ((model.input, cfg.input, False), (model.output, cfg.output, True)):
        entry = target.add(name=spec.name, data_type=pb.DataType.Value(_dtype(spec, model.path)))
        entry.dims.extend(model.dims(spec, with_batch=not batched))
        if labels:
            entry.label_filename = "labels.txt"
    if instance_kind != "auto" or model.kind == "engine":
        kind = "gpu" if model.kind == "engine" else instance_kind
        cfg.instance_group.add(count=1, kind=pb.ModelInstanceGroup.Kind.Value(f"KIND_{kind.upper()}"))
    return cfg


def parse_config(text: str, source: str) -> Any:
    """``config.pbtxt`` text -> ``ModelConfig``, strictly: an unknown field or a wrong type is one
    line naming ``source`` and protobuf's message."""
    from google.protobuf import text_format

    pb = model_config_pb2()
    try:
        return text_format.Parse(text, pb.ModelConfig())
    except text_format.ParseError as e:
        raise SegpipeError(f"{source}: not a valid Triton ModelConfig ({e})") from None


def check_config(cfg: Any, model: ModelFile, source: str) -> None:
    """The configuration's tensors, types and batching agree with the model file (one line otherwise)."""
    pb = model_config_pb2()
    batched = cfg.max_batch_size > 0
    if batched and not model.dynamic_batch:
        raise SegpipeError(f"{source}: max_batch_size {cfg.max_batch_size} for a model with a fixed batch")
    for kind, entries, spec in (("input", cfg.input, model.input), ("output", cfg.output, model.output)):
        if len(entries) != 1 or entries[0].name != spec.name:
            raise SegpipeError(f"{source}: {kind} is not the model's one {kind} {spec.name}")
        want = model.dims(spec, with_batch=not batched)
        got = list(entries[0].dims)
        if got != want:
            raise SegpipeError(f"{source}: {kind} {spec.name} dims {got}, the model's are {want}")
        dtype = pb.DataType.Name(entries[0].data_type)
        if dtype != _dtype(spec, model.path):
            raise SegpipeError(f"{source}: {kind} {spec.name} is {dtype}, the model's is {spec.dtype}")


def write_triton_repo(
    model: ModelFile,
    repo: str | Path,
    name: str | None = None,
    version: int = 1,
    max_batch_size: int = 8,
    queue_delay_us: int = 100,
    instance_kind: str = "auto",
) -> TritonResult:
    """Write ``repo/NAME`` for ``model`` (each file atomically) and check what was written."""
    from google.protobuf import text_format

    name = check_name(name) if name else check_name(model.path.stem, model.path)
    if version < 1:
        raise ConfigError(f"--version {version}: Triton model versions start at 1")
    cfg = build_config(model, name, max_batch_size, queue_delay_us, instance_kind)
    labels = labels_text(model.info, str(model.path))
    model_dir = ensure_dir(Path(repo) / name)
    _, filename = BACKENDS[model.kind]
    target = copy_model(model.path, ensure_dir(model_dir / str(version)) / filename)
    labels_path = atomic_write_text(model_dir / "labels.txt", labels)
    config_path = atomic_write_text(model_dir / "config.pbtxt", text_format.MessageToString(cfg))
    check_config(
        parse_config(config_path.read_text(encoding="utf-8"), str(config_path)), model, str(config_path)
    )
    notes = []
    others = sorted(int(d.name) for d in model_dir.iterdir() if d.name.isdigit() and int(d.name) != version)
    if others:  # Triton's default version policy serves the highest version, with this config
        notes.append(
            f"{model_dir} also holds version(s) {', '.join(map(str, others))}: Triton serves the highest "
            f"one with this config.pbtxt (version {version}'s); remove the others or use another --name"
        )
    if not model.dynamic_batch:
        notes.append(
            f"{model.path.name} has a fixed batch of {model.fixed_batch}: max_batch_size 0, no dynamic "
            "batching (export with --dynamic-batch to let Triton batch requests)"
        )
    elif model.max_batch is not None and model.max_batch < max_batch_size:
        notes.append(f"max_batch_size {model.max_batch}: the largest batch the engine's profile takes")
    if model.kind == "engine":
        notes.append(
            "an engine runs only on the TensorRT version and GPU that built it: serve it with the Triton "
            "release carrying that TensorRT (see segpipe info on the engine)"
        )
    return TritonResult(model_dir, config_path, target, labels_path, cfg.max_batch_size, notes)
