"""``segpipe info``: what a model file holds, for every kind segpipe reads.

* ``.pth`` / ``.pt``: a segpipe checkpoint (its :class:`ModelInfo`, epoch, best metric) or a bare
  state_dict (tensor and parameter counts, the head's class count);
* ``.onnx``: the segpipe metadata props, inputs, outputs, opset, node count, weight precision;
* ``.engine`` (``.plan``, ``.trt``, ``.bin``): the sidecar ``NAME.engine.json`` ``build-trt``
  writes (TensorRT version, GPU, precision, optimisation profile). tensorrt is never imported:
  an engine alone cannot be read without deserialising it on a GPU.

A folder (a run folder, say) is listed instead: the model files in it and one level of sub-folders
below, with their kinds and sizes.

The file's first bytes decide which of these it is (a checkpoint named ``.bin`` is read as a
checkpoint); the suffix only when the content is not recognised. Nothing here runs a model;
reading a checkpoint uses ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segpipe.errors import CheckpointError, close_matches, shorten
from segpipe.export.graph import TensorSpec
from segpipe.modelinfo import ModelInfo
from segpipe.runtime.base import KIND_NAMES, not_a_model, sniff_model_kind
from segpipe.units import shape_text
from segpipe.utils import file_size_mb

CHECKPOINT_SUFFIXES = (".pth", ".pt")
ONNX_SUFFIXES = (".onnx",)
ENGINE_SUFFIXES = (".engine", ".plan", ".trt", ".bin")


@dataclass
class ModelDescription:
    """What ``segpipe info`` shows about one model file."""

    path: Path
    #: ``segpipe checkpoint``, ``bare state_dict``, ``onnx`` or ``tensorrt engine``.
    kind: str
    size_mb: float
    #: The model's self-description (``None``: the file does not carry one).
    info: ModelInfo | None = None
    inputs: list[TensorSpec] = field(default_factory=list)
    outputs: list[TensorSpec] = field(default_factory=list)
    opset: int | None = None
    #: Further facts, in display order (epoch, parameters, TensorRT version, profile...).
    details: dict[str, Any] = field(default_factory=dict)
    #: Things the user should know (no metadata, no sidecar...).
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (for ``segpipe info --json``); ``normalisation`` in pixel units, as
        ``--mean``/``--std`` take them (``model_info`` keeps the file's own 0-1 values)."""
        return {
            "path": str(self.path),
            "kind": self.kind,
            "size_mb": round(self.size_mb, 3),
            "model_info": self.info.to_dict() if self.info is not None else None,
            "inputs": [{"name": t.name, "shape": list(t.shape), "dtype": t.dtype} for t in self.inputs],
            "outputs": [{"name": t.name, "shape": list(t.shape), "dtype": t.dtype} for t in self.outputs],
            "normalisation": None
            if self.info is None
            else {"mean": pixel_units(self.info.mean), "std": pixel_units(self.info.std), "units": "0-255"},
            "opset": self.opset,
            "details": self.details,
            "notes": self.notes,
        }


def pixel_units(values: tuple[float, ...]) -> list[float]:
    """A model's mean or std (stored for 0-1 pixels) in the flags' pixel units (0-255), rounded
    off float noise: ImageNet's mean (0.485, 0.456, 0.406) -> [123.675, 116.28, 103.53]."""
    return [float(f"{v * 255:.6g}") for v in values]


def normalisation_text(info: ModelInfo) -> str:
    """``mean (123.675, 116.28, 103.53), std (58.395, 57.12, 57.375) in pixel units (0-255)``:
    the units ``--mean``/``--std`` take, so a value can be copied into them."""
    fmt = lambda vs: "(" + ", ".join(f"{v:g}" for v in pixel_units(vs)) + ")"  # noqa: E731
    return f"mean {fmt(info.mean)}, std {fmt(info.std)} in pixel units (0-255), as --mean/--std take them"


def describe_model(path: str | Path, trust: bool = False) -> ModelDescription:
    """Describe a ``.pth``, ``.onnx`` or ``.engine`` file; one-line error when it cannot be read."""
    p = Path(path)
    suffix = p.suffix.lower()
    known = CHECKPOINT_SUFFIXES + ONNX_SUFFIXES + ENGINE_SUFFIXES
    if p.is_dir():
        return describe_folder(p)
    if suffix not in known and not_a_model(p):
        raise CheckpointError(not_a_model(p))
    if suffix not in known:
        raise CheckpointError(
            f"{p}: unknown model file type {suffix or '(no suffix)'!r}; expected one of "
            f"{', '.join(known)}{close_matches(suffix, known)}"
        )
    if not p.is_file():
        raise CheckpointError(f"model file {p} does not exist")
    if p.stat().st_size == 0:
        raise CheckpointError(f"{p} is an empty file (0 bytes), not a model (an interrupted copy?)")
    by_suffix = (
        "torch" if suffix in CHECKPOINT_SUFFIXES else "onnx" if suffix in ONNX_SUFFIXES else "tensorrt"
    )
    kind = sniff_model_kind(p) or by_suffix  # the content decides: a checkpoint named .bin is a checkpoint
    describe = {"torch": _describe_checkpoint, "onnx": _describe_onnx, "tensorrt": _describe_engine}[kind]
    desc = describe(p, trust) if kind == "torch" else describe(p)
    if kind != by_suffix:
        desc.notes.append(
            f"read as a {KIND_NAMES[kind]} from its content, whatever its suffix {suffix!r} suggests"
        )
    return desc


#: How many model files a folder's description names (the count says the rest).
FOLDER_LISTED = 20


def _model_files(folder: Path) -> list[tuple[Path, str]]:
    """(path, kind) of the model files in ``folder`` and its sub-folders (one level), sorted; a
    ``.bin`` only when its content is a model (the suffix is too common to go by)."""
    by_suffix = {s: "torch" for s in CHECKPOINT_SUFFIXES} | {s: "onnx" for s in ONNX_SUFFIXES}
    by_suffix |= {s: "tensorrt" for s in ENGINE_SUFFIXES}
    found = []
    for sub in [folder, *sorted(d for d in folder.iterdir() if d.is_dir() and not d.is_symlink())]:
        for f in sorted(sub.iterdir()):
            kind = by_suffix.get(f.suffix.lower())
            if kind is None or not f.is_file():
                continue
            sniffed = sniff_model_kind(f)
            if f.suffix.lower() == ".bin" and sniffed is None:
                continue
            found.append((f, sniffed or kind))
    return found


def describe_folder(folder: Path) -> ModelDescription:
    """What a folder holds: its model files (and those one sub-folder down), kind and size each;
    one line naming the folder when it holds none."""
    from segpipe.units import human_bytes

    try:
        models = _model_files(folder)
    except OSError as e:
        raise CheckpointError(f"{folder}: cannot list the folder ({e.strerror or e})") from e
    known = CHECKPOINT_SUFFIXES + ONNX_SUFFIXES + ENGINE_SUFFIXES[:-1]
    if not models:
        raise CheckpointError(
            f"{folder} is a folder and holds no model file ({', '.join(known)}), nor do its "
            "sub-folders; name a model file: segpipe info FOLDER/best.pth"
        )
    sizes = [f.stat().st_size for f, _ in models]
    desc = ModelDescription(folder, "folder", sum(sizes) / 1e6)
    desc.details["model files"] = len(models)
    for (f, kind), size in list(zip(models, sizes, strict=True))[:FOLDER_LISTED]:
        desc.details[f.relative_to(folder).as_posix()] = f"{KIND_NAMES[kind]}, {human_bytes(size)}"
    if len(models) > FOLDER_LISTED:
        desc.details["..."] = f"{len(models) - FOLDER_LISTED} more"
    first = models[0][0]
    desc.notes.append(f"{folder} is a folder: segpipe info {first} describes one of its models")
    return desc


def _describe_checkpoint(path: Path, trust: bool) -> ModelDescription:
    from segpipe.models import head_classes, load_checkpoint

    ckpt = load_checkpoint(path, trust=trust)
    tensors = ckpt.state_dict
    params = sum(int(t.numel()) for t in tensors.values() if t.is_floating_point())
    kind = "segpipe checkpoint" if ckpt.info else "bare state_dict"
    desc = ModelDescription(path, kind, file_size_mb(path), info=ckpt.info)
    desc.details["tensors"] = len(tensors)
    desc.details["parameters"] = f"{params / 1e6:.2f} M"
    state = ckpt.train_state or {}
    for key, label in (("epoch", "epoch"), ("best_metric", "best mIoU"), ("best_epoch", "best epoch")):
        if isinstance(state.get(key), (int, float)):
            desc.details[label] = state[key]
    if ckpt.is_bare:
        head = head_classes(tensors)
        desc.details["head outputs"] = head if head is not None else "unknown"
        desc.notes.append(
            "a bare state_dict does not say what it is: pass --arch, --encoder (defaults Unet, "
            "efficientnet-b0) and --num-classes when you use it"
        )
    return desc


_ONNX_ELEM = {1: "float32", 10: "float16", 11: "float64", 16: "bfloat16", 2: "uint8", 3: "int8", 7: "int64"}


def _describe_onnx(path: Path) -> ModelDescription:
    import onnx

    from segpipe.export.graph import graph_inputs, tensor_specs

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as e:
        raise CheckpointError(f"{path} is not a readable ONNX model ({type(e).__name__})") from e
    props = {p.key: p.value for p in proto.metadata_props}
    info = ModelInfo.from_metadata(props, f"{path}: metadata")  # one line when damaged
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    desc = ModelDescription(
        path,
        "onnx",
        file_size_mb(path),
        info=info,
        opset=opset,
        inputs=tensor_specs(graph_inputs(proto)),
        outputs=tensor_specs(proto.graph.output),
    )
    counts: dict[str, int] = {}
    for init in proto.graph.initializer:
        name = _ONNX_ELEM.get(init.data_type, str(init.data_type))
        counts[name] = counts.get(name, 0) + 1
    desc.details["producer"] = f"{proto.producer_name} {proto.producer_version}".strip() or "unknown"
    desc.details["ir version"] = proto.ir_version
    desc.details["nodes"] = len(proto.graph.node)
    desc.details["weights"] = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "none"
    _describe_int8(proto, props, desc)
    others = {k: v for k, v in props.items() if not k.startswith("segpipe.")}
    for key, value in others.items():
        label, text = _KNOWN_PROPS.get((key, value), (f"metadata {key}", shorten(value, 80)))
        desc.details[label] = text
    if info is None:
        desc.notes.append(
            "no segpipe metadata: to run it, tell segpipe how to feed it with --mean and --std (pixel "
            "units), --input-layout when the input shape does not show it and --num-classes when the "
            "output does not (or export it with segpipe export-onnx)"
        )
    return desc


#: Metadata that tools other than segpipe leave, said in words: (key, value) -> (row, text).
_KNOWN_PROPS = {
    ("onnx.infer", "onnxruntime.quant"): ("quantized by", "ONNX Runtime quantization (quantize_static)"),
}


def _describe_int8(proto: Any, props: dict[str, str], desc: ModelDescription) -> None:
    """Q/DQ node counts and the calibration record of an INT8 graph (``segpipe quantize``)."""
    from segpipe.export.int8_gate import gate_summary
    from segpipe.export.qdq_graph import quantized_for
    from segpipe.export.quantize import qdq_counts, read_calibration

    counts = qdq_counts(proto)
    if sum(counts.values()):
        desc.details["quantization"] = ", ".join(f"{n} {op}" for op, n in counts.items())
        target = quantized_for(proto)
        if target:
            desc.details["quantized for"] = target
    cal = read_calibration(props)
    if cal is not None:
        desc.details["calibration"] = (
            f"{cal.get('method', '?')}, {cal.get('images', '?')} images of {cal.get('source', '?')}/ "
            f"({cal.get('held_out', 0)} held out), {cal.get('quantizer', '?')}"
        )
        if cal.get("float_nodes"):
            desc.details["kept fp32"] = f"{len(cal['float_nodes'])} nodes (input normalisation, head)"
        gate = gate_summary(cal)
        if gate is not None:  # what quantize's gate measured (``benchmark`` shows it beside its own)
            desc.details["int8 gate"] = f"argmax agreement with FP32 {gate[1]}"


def _describe_engine(path: Path) -> ModelDescription:
    from segpipe.tensorrt.sidecar import read_sidecar, sidecar_model_info, sidecar_path

    sidecar = read_sidecar(path)
    desc = ModelDescription(path, "tensorrt engine", file_size_mb(path))
    if sidecar is None:
        desc.notes.append(
            f"no sidecar {sidecar_path(path).name} beside it: an engine alone does not say what it holds "
            "(segpipe build-trt writes one); it runs only with the TensorRT version and GPU that built it"
        )
        return desc
    desc.info = sidecar_model_info(sidecar, sidecar_path(path))  # validated: one line when damaged
    for key in (
        "tensorrt_version",
        "gpu_name",
        "compute_capability",
        "precision",
        "onnx_precision",
        "fp16_method",
        "strongly_typed",
        "workspace_mib",
        "opt_level",
        "builder",
        "onnx",
        "created",
    ):
        if sidecar.get(key) is not None:
            desc.details[key.replace("_", " ")] = sidecar[key]
    for name, prof in (sidecar.get("profile") or {}).items():
        if isinstance(prof, dict):
            desc.details[f"profile {name}"] = " / ".join(
                f"{k} {shape_text(prof[k], 'NHWC')}" for k in ("min", "opt", "max") if k in prof
            )
    for key, target in (("inputs", desc.inputs), ("outputs", desc.outputs)):
        for t in sidecar.get(key) or []:
            if isinstance(t, dict) and "name" in t:
                dims = tuple(t.get("dims") or ())
                target.append(TensorSpec(str(t["name"]), dims, str(t.get("dtype", "?"))))
    if desc.info is None:
        desc.notes.append(f"{sidecar_path(path).name} holds no segpipe metadata")
    return desc
