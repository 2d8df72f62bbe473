"""What a segpipe model file tells a deployment: tensors, batch, classes (one reader for all targets).

An ONNX model is read from its graph (inputs, outputs, element types, dims) and its segpipe
metadata; an engine from its sidecar ``NAME.engine.json`` (the ONNX graph's tensors and the
optimisation profile: an engine cannot be read without deserialising it on a GPU). A model file
without segpipe metadata is refused: a deployment needs the class count, names and the input
contract, and guessing them is what goes wrong silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from segpipe.errors import ConfigError
from segpipe.export.graph import TensorSpec
from segpipe.modelinfo import ModelInfo

ONNX_SUFFIXES = (".onnx",)
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")


@dataclass(frozen=True)
class ModelFile:
    """A model file as a deployment sees it.

    Attributes:
        path: the model file.
        kind: ``onnx`` or ``engine``.
        info: its segpipe description (classes, names, colours, normalisation, output kind).
        input: the one image input (``input_1``: N x H x W x C, NHWC).
        output: the one output (``output``: N x C x H x W, or N x H x W for ``labels``).
        max_batch: the largest batch the file takes (``None``: any, a dynamic ONNX batch axis).
    """

    path: Path
    kind: str
    info: ModelInfo
    input: TensorSpec
    output: TensorSpec
    max_batch: int | None

    @property
    def dynamic_batch(self) -> bool:
        """The batch axis is not fixed in the file."""
        return not isinstance(self.input.shape[0], int) or self.input.shape[0] <= 0

    @property
    def fixed_batch(self) -> int | None:
        """The batch size the file is fixed to (``None``: dynamic)."""
        return None if self.dynamic_batch else int(self.input.shape[0])

    def dims(self, spec: TensorSpec, with_batch: bool = False) -> list[int]:
        """``spec``'s dims with -1 for each dynamic axis, the batch axis dropped unless asked for."""
        dims = [d if isinstance(d, int) and d > 0 else -1 for d in spec.shape]
        return dims if with_batch else dims[1:]


def read_model_file(path: str | Path) -> ModelFile:
    """Read ``path`` (``.onnx`` or ``.engine``) -> :class:`ModelFile`; one line when it cannot be
    deployed (unknown suffix, no segpipe metadata, not the one-input one-output contract)."""
    from segpipe.info import describe_model

    p = Path(path)
    suffix = p.suffix.lower()
    if p.is_dir():
        raise ConfigError(f"{p} is a folder; name the model file in it (.onnx, or .engine with its sidecar)")
    if suffix not in ONNX_SUFFIXES + ENGINE_SUFFIXES:
        hint = " (export it first: segpipe export-onnx)" if suffix in (".pth", ".pt") else ""
        raise ConfigError(
            f"{p}: a deployment takes an ONNX model (.onnx) or a TensorRT engine "
            f"({', '.join(ENGINE_SUFFIXES)}), not {suffix or 'a file without suffix'}{hint}"
        )
    desc = describe_model(p)
    kind = "onnx" if desc.kind == "onnx" else "engine" if desc.kind == "tensorrt engine" else desc.kind
    if kind not in ("onnx", "engine"):
        raise ConfigError(f"{p}: a {desc.kind}, not an ONNX model or engine (export it: segpipe export-onnx)")
    if desc.info is None:
        where = "metadata" if kind == "onnx" else "sidecar (NAME.engine.json with segpipe metadata)"
        raise ConfigError(
            f"{p}: no segpipe {where}, so its classes and input contract are unknown; deploy a model "
            "written by segpipe export-onnx / build-trt"
        )
    if len(desc.inputs) != 1 or len(desc.outputs) != 1:
        raise ConfigError(
            f"{p}: {len(desc.inputs)} inputs and {len(desc.outputs)} outputs; segpipe deploys the "
            "one-input (input_1), one-output (output) graph export-onnx writes"
        )
    inp, out = desc.inputs[0], desc.outputs[0]
    if len(inp.shape) != 4:
        raise ConfigError(f"{p}: input {inp.name} has {len(inp.shape)} dims ({inp}); expected N x H x W x C")
    max_batch: int | None = None
    if kind == "engine":
        from segpipe.tensorrt.sidecar import read_sidecar

        profile = ((read_sidecar(p) or {}).get("profile") or {}).get(inp.name) or {}
        top = profile.get("max") or []
        max_batch = int(top[0]) if top else None
    if max_batch is None and isinstance(inp.shape[0], int) and inp.shape[0] > 0:
        max_batch = int(inp.shape[0])
    return ModelFile(p, kind, desc.info, inp, out, max_batch)


def labels_text(info: ModelInfo, source: str) -> str:
    """The labels file: one class name per line, in class-id order.

    DeepStream's ``nvinfer`` skips empty lines and splits a line at ``;`` (its label-file parser in
    ``nvdsinfer_context_impl.cpp``), so an empty name would shift every later class and a ``;``
    would split one: both are refused with one line naming the class.
    """
    names = list(info.class_names) or [f"class_{i}" for i in range(info.num_classes)]
    for i, name in enumerate(names):
        if not name.strip() or ";" in name or "\n" in name or "\r" in name:
            raise ConfigError(
                f"{source}: class {i} is named {name!r}; a labels file needs a non-empty name without "
                "';' or line breaks (re-export with segpipe export-onnx --class-names)"
            )
    return "".join(f"{n}\n" for n in names)


def copy_model(src: Path, target: Path) -> Path:
    """Copy the model file ``src`` to ``target`` atomically (nothing when it is that file already);
    one line when it cannot be copied."""
    import shutil

    from segpipe.errors import SegpipeError
    from segpipe.utils import atomic_path

    if target.exists() and target.resolve() == src.resolve():
        return target
    with atomic_path(target) as tmp:
        try:
            shutil.copyfile(src, tmp)
        except OSError as e:
            raise SegpipeError(f"cannot copy {src} to {target}: {e.strerror or e}") from e
    return target
