"""A DeepStream ``nvinfer`` configuration for a segpipe model: semantic segmentation, ``network-type=2``.

What ``nvinfer`` does with a segmentation network (DeepStream 9.1 sources,
``gstnvinfer_property_parser.cpp`` and ``nvdsinfer_context_impl*.cpp``, Apache-2.0):

* it scales each frame to ``infer-dims`` (C;H;W, whatever the input order), converts it to
  ``model-color-format`` (0 RGB, 1 BGR, 2 GRAY) and feeds ``y = net-scale-factor * (x - offsets[c])``
  as float32, planar for ``network-input-order=0`` (NCHW) or interleaved for ``1`` (NHWC);
* its segmentation parser reads the first output as float32 C x H x W (``segmentation-output-order=0``),
  and gives each pixel the class whose value is the largest of those above
  ``segmentation-threshold`` (-1 where none is), with C equal to ``num-detected-classes``.

A segpipe ONNX model takes NHWC RGB pixels 0-255 with the normalisation inside the graph, so the
config feeds it as such: ``network-input-order=1``, ``model-color-format=0``,
``net-scale-factor=1``, ``offsets=0;0;0`` (normalising outside too would apply it twice). The
parser thresholds values, so the model must output probabilities (``export-onnx --output-kind
probs``): with ``segmentation-threshold=0`` every pixel gets the arg-max class, the class
``segpipe visualize`` draws. Logits (negative ones never pass a threshold >= 0) and class maps are
refused with the export command that fixes them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from segpipe.deploy.model import ModelFile, copy_model, labels_text
from segpipe.errors import ConfigError
from segpipe.utils import atomic_write_text, ensure_dir

#: DeepStream release whose gst-nvinfer sources the written keys and values follow.
DEEPSTREAM_VERSION = "9.1"
#: segpipe precision -> nvinfer network-mode (0 FP32, 1 INT8, 2 FP16).
NETWORK_MODES = {"fp32": 0, "int8": 1, "fp16": 2}
#: nvinfer's largest batch-size (NVDSINFER_MAX_BATCH_SIZE in nvdsinfer_context.h).
MAX_BATCH = 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
#: The pipeline script's lines that turn its first argument into the file URI uridecodebin reads:
#: the absolute path (links resolved) percent-encoded by Python's standard library
#: (``Path.as_uri``: spaces, ``#``, ``%``, ``:``, non-ASCII and non-UTF-8 bytes), so the URI holds
#: nothing a URI parser or gst-launch reads otherwise; the path is passed as an argument, never as code.
_URI_LINES = (
    'VIDEO="${1:?usage: $0 VIDEO [OUT.mp4]}"\n'
    '[ -e "$VIDEO" ] || { echo "$0: $VIDEO: no such video file" >&2; exit 1; }\n'
    'command -v python3 >/dev/null 2>&1 || { echo "$0: python3 is needed to write the video\'s file URI" >&2; exit 1; }\n'
    'URI="$(python3 -c \'import pathlib, sys; print(pathlib.Path(sys.argv[1]).resolve().as_uri())\' "$VIDEO")"\n'
)


@dataclass
class DeepStreamResult:
    """What :func:`write_deepstream` wrote."""

    config: Path
    labels: Path
    model: Path
    pipeline: Path
    #: ``(key, value)`` of the ``[property]`` group, in file order.
    properties: list[tuple[str, str]]
    notes: list[str] = field(default_factory=list)


def _refuse(model: ModelFile) -> None:
    """One line for a model nvinfer's segmentation path cannot run as segpipe means it."""
    info, src = model.info, model.path
    export = "segpipe export-onnx -m CHECKPOINT --output-kind probs"
    if info.mode != "seg":
        raise ConfigError(
            f"{src}: a {info.mode}-mode model (sigmoid channels); nvinfer's segmentation parser takes "
            "one softmax probability per class (a multiclass 'seg' model)"
        )
    if info.output_kind != "probs":
        what = (
            "logits (negative ones never pass its threshold)"
            if info.output_kind == "logits"
            else "a class map"
        )
        raise ConfigError(
            f"{src}: outputs {what}; nvinfer's segmentation parser thresholds C x H x W probabilities: "
            f"{export}"
        )
    if model.output.dtype != "float32" or model.input.dtype != "float32":
        raise ConfigError(
            f"{src}: input {model.input.dtype}, output {model.output.dtype}; nvinfer feeds float32 pixels "
            f"and parses float32 probabilities: {export} (without --input-dtype uint8)"
        )
    if info.layout != "NHWC" or model.input.shape[-1] != 3:
        raise ConfigError(f"{src}: input {model.input}; nvinfer is fed 3-channel RGB, NHWC here")


def nvinfer_properties(
    model: ModelFile, model_key: str, model_name: str, batch_size: int | None = None, gpu_id: int = 0
) -> list[tuple[str, str]]:
    """The ``[property]`` group for ``model`` (named ``model_name`` beside the config) in order."""
    _refuse(model)
    info = model.info
    height, width = model.input.shape[1], model.input.shape[2]
    if not (isinstance(height, int) and isinstance(width, int) and height > 0 and width > 0):
        width, height = info.input_size  # a dynamic-size graph: the size it was exported at
    batch = model.fixed_batch or batch_size or 1
    if batch_size is not None and model.fixed_batch is not None and batch_size != model.fixed_batch:
        raise ConfigError(f"--batch {batch_size}: {model.path} is fixed to batch {model.fixed_batch}")
    top = min(model.max_batch or MAX_BATCH, MAX_BATCH)
    if not 1 <= batch <= top:
        raise ConfigError(f"--batch {batch}: {model.path} takes 1 to {top}")
    return [
        ("gpu-id", str(gpu_id)),
        ("gie-unique-id", "1"),
        ("process-mode", "1"),
        ("network-type", "2"),
        (model_key, model_name),
        ("labelfile-path", "labels.txt"),
        ("batch-size", str(batch)),
        ("network-mode", str(NETWORK_MODES[info.precision])),
        ("infer-dims", f"3;{height};{width}"),
        ("network-input-order", "1"),
        ("model-color-format", "0"),
        ("net-scale-factor", "1.0"),
        ("offsets", "0.0;0.0;0.0"),
        ("maintain-aspect-ratio", "0"),
        ("output-blob-names", model.output.name),
        ("num-detected-classes", str(info.num_classes)),
        ("segmentation-threshold", "0.0"),
        ("segmentation-output-order", "0"),
    ]


def config_text(model: ModelFile, props: list[tuple[str, str]]) -> str:
    """The nvinfer config file: comments on whole lines (GKeyFile has no inline comments)."""
    info = model.info
    mean = ", ".join(f"{m:.4g}" for m in info.mean)
    std = ", ".join(f"{s:.4g}" for s in info.std)
    head = [
        f"# nvinfer config for {_UNSAFE.sub('_', model.path.name)} ({info.arch}/{info.encoder}, {info.num_classes} classes),",
        f"# written by segpipe for DeepStream {DEEPSTREAM_VERSION}'s gst-nvinfer (semantic segmentation).",
        "# Input: RGB pixels 0-255, NHWC; the graph normalises them itself (mean "
        f"({mean}), std ({std}) of 0-1 pixels),",
        "# so net-scale-factor=1 and offsets=0: normalising here as well would apply it twice.",
        "# Output: C x H x W softmax probabilities; with segmentation-threshold=0 each pixel gets the",
        "# arg-max class (the class map segpipe visualize draws).",
        "[property]",
    ]
    return "\n".join(head + [f"{k}={v}" for k, v in props]) + "\n"


def pipeline_text(config_name: str, width: int, height: int, batch: int) -> str:
    """A shell script running the config on a video with gst-launch-1.0 (decode, mux, nvinfer,
    nvsegvisual, H.264 into an MP4)."""
    return (
        "#!/bin/sh\n"
        f"# Runs {config_name} on a video with DeepStream {DEEPSTREAM_VERSION}: decode, batch (nvstreammux), infer\n"
        "# (nvinfer), draw the class map (nvsegvisual), encode to an MP4.\n"
        "# usage: sh deepstream_pipeline.sh VIDEO [OUT.mp4]\nset -e\n"
        'HERE="$(cd "$(dirname "$0")" && pwd)"\n'
        f"{_URI_LINES}"
        'OUT="${2:-segmented.mp4}"\n'
        'gst-launch-1.0 -e uridecodebin uri="$URI" ! m.sink_0 \\\n'
        f"  nvstreammux name=m batch-size={batch} width={width} height={height} \\\n"
        f'  ! nvinfer config-file-path="$HERE/{config_name}" \\\n'
        f"  ! nvsegvisual width={width} height={height} \\\n"
        '  ! nvvideoconvert ! nvv4l2h264enc ! h264parse ! qtmux ! filesink location="$OUT"\n'
    )


def write_deepstream(
    model: ModelFile, output_dir: str | Path, batch_size: int | None = None, gpu_id: int = 0
) -> DeepStreamResult:
    """Write the nvinfer config, labels, a copy of the model and the pipeline script into ``output_dir``."""
    key = "onnx-file" if model.kind == "onnx" else "model-engine-file"
    # the names written into the config and the shell script: letters, digits, '_', '.', '-' only
    # (a model named 'a$(cmd).onnx' ran cmd in the pipeline script; a newline split a config key)
    stem = _UNSAFE.sub("_", model.path.stem) or "model"
    name = stem + model.path.suffix.lower()
    props = nvinfer_properties(model, key, name, batch_size, gpu_id)
    labels = labels_text(model.info, str(model.path))
    config_name = f"config_infer_primary_{stem}.txt"
    other = next(
        (
            c.name
            for c in sorted(Path(output_dir).glob("config_infer_primary_*.txt"))
            if c.name != config_name
        ),
        None,
    )
    if (
        other is not None
    ):  # labels.txt and the pipeline script are shared names: they would now be this model's
        raise ConfigError(
            f"{output_dir} holds the DeepStream files of another model ({other}, its labels.txt and pipeline); "
            "give another --output"
        )
    out = ensure_dir(output_dir)  # after the checks: a refused model leaves no folder behind
    target = copy_model(model.path, out / name)
    config = atomic_write_text(out / config_name, config_text(model, props))
    labels_path = atomic_write_text(out / "labels.txt", labels)
    values = dict(props)
    _, height, width = (int(v) for v in values["infer-dims"].split(";"))
    script = atomic_write_text(
        out / "deepstream_pipeline.sh", pipeline_text(config_name, width, height, int(values["batch-size"]))
    )
    notes = []
    if model.kind == "onnx":
        notes.append(
            "nvinfer builds a TensorRT engine from the ONNX model on its first run (minutes on a Jetson) "
            "and saves it beside the model; add model-engine-file=THAT.engine to reuse it"
        )
    else:
        notes.append(
            "an engine runs only on the TensorRT version and GPU that built it (segpipe info shows them)"
        )
    if not isinstance(model.input.shape[1], int) or not isinstance(model.input.shape[2], int):
        notes.append(f"dynamic-size graph: infer-dims is its export size, {width}x{height}")
    return DeepStreamResult(config, labels_path, target, script, props, notes)
