"""The rules DeepStream's gst-nvinfer applies to a config file, as a table, and a checker.

Source: DeepStream 9.1, ``src/gst-plugins/gst-nvinfer/gstnvinfer_property_parser.cpp`` and
``gstnvinfer_property_parser.h`` (key names), ``src/utils/nvdsinfer/nvdsinfer_context_impl*.cpp``
(what the segmentation path needs), https://github.com/NVIDIA/DeepStream (Apache-2.0, relicensed
2026-05-22, commit 590d647). NVIDIA's files are not copied here; the table below restates, for
each key of the ``[property]`` group, the GKeyFile getter the parser calls (its value type) and
the values its ``switch`` / range checks accept. Keys the parser does not know end in
``"Unknown or legacy key specified"``; a value its getter cannot read, or one its checks refuse,
ends parsing ("Failed to parse group property").

Value syntax is GLib's GKeyFile: ``key=value`` lines under ``[group]``; whole-line ``#`` comments
only (a ``#`` after a value is part of the value); integers are base-10 ``strtol`` of the whole
value, doubles ``g_ascii_strtod`` of the whole value, booleans ``true``/``false``/``1``/``0``,
lists ``;``-separated (a trailing ``;`` allowed).
"""

from __future__ import annotations

import re
from pathlib import Path

INT, DOUBLE, BOOL, STR, INTS, DOUBLES, STRS = (
    "int",
    "double",
    "bool",
    "string",
    "int-list",
    "double-list",
    "string-list",
)

#: key -> (GKeyFile getter type, check on the parsed value or None). Every [property] key of the
#: 9.1 header that gst_nvinfer_parse_props or gst_nvinfer_parse_other_attribute reads.
RULES: dict[str, tuple[str, object]] = {
    "gie-unique-id": (INT, lambda v: v > 0),
    "process-mode": (INT, {1, 2}),
    "interval": (INT, lambda v: v >= 0),
    "labelfile-path": (STR, None),
    "gpu-id": (INT, None),
    "secondary-reinfer-interval": (INT, None),
    "output-tensor-meta": (BOOL, None),
    "disable-output-host-copy": (INT, None),
    "auto-inc-mem": (INT, None),
    "max-gpu-mem-per": (INT, None),
    "enable-dla": (BOOL, None),
    "use-dla-core": (INT, None),
    "dump-input-tensor": (INT, None),
    "dump-output-tensor": (INT, None),
    "overwrite-input-tensor": (INT, None),
    "overwrite-output-tensor": (INT, None),
    "ip-tensor-file": (STR, None),
    "op-tensor-files": (STRS, None),
    "raw-output-file-write": (BOOL, None),
    "batch-size": (INT, lambda v: 1 <= v <= 1024),  # NVDSINFER_MAX_BATCH_SIZE
    "tensor-meta-pool-size": (INT, None),
    "network-mode": (INT, {0, 1, 2, 3}),  # FP32, INT8, FP16, BEST
    "model-engine-file": (STR, None),
    "int8-calib-file": (STR, None),
    "workspace-size": (INT, None),
    "output-blob-names": (STRS, None),
    "is-classifier": (BOOL, None),
    "network-type": (INT, {0, 1, 2, 3, 100}),  # detector, classifier, segmentation, instance seg., other
    "force-implicit-batch-dim": (BOOL, None),
    "infer-dims": (INTS, lambda v: len(v) == 3),  # always C;H;W
    "output-io-formats": (STRS, None),
    "layer-device-precision": (STRS, None),
    "model-color-format": (INT, {0, 1, 2}),  # RGB, BGR, GRAY
    "net-scale-factor": (DOUBLE, None),
    "offsets": (DOUBLES, lambda v: len(v) <= 4),  # _MAX_CHANNELS
    "mean-file": (STR, None),
    "maintain-aspect-ratio": (BOOL, None),
    "symmetric-padding": (BOOL, None),
    "scaling-filter": (INT, {0, 1, 2, 3, 4, 5, 6}),
    "scaling-compute-hw": (INT, {0, 1, 2}),
    "network-input-order": (INT, {0, 1}),  # NCHW, NHWC
    "input-tensor-from-meta": (BOOL, None),
    "custom-lib-path": (STR, None),
    "parse-bbox-func-name": (STR, None),
    "parse-bbox-instance-mask-func-name": (STR, None),
    "parse-segmentation-func-name": (STR, None),
    "engine-create-func-name": (STR, None),
    "parse-classifier-func-name": (STR, None),
    "custom-network-config": (STR, None),
    "model-file": (STR, None),
    "proto-file": (STR, None),
    "uff-file": (STR, None),
    "uff-input-order": (INT, {0, 1, 2}),
    "input-dims": (INTS, lambda v: len(v) == 4),
    "uff-input-dims": (INTS, lambda v: len(v) == 4),
    "uff-input-blob-name": (STR, None),
    "tlt-encoded-model": (STR, None),
    "tlt-model-key": (STR, None),
    "onnx-file": (STR, None),
    "num-detected-classes": (INT, lambda v: v >= 0),
    "enable-dbscan": (BOOL, None),
    "cluster-mode": (INT, {0, 1, 2, 3, 4}),
    "crop-objects-to-roi-boundary": (BOOL, None),
    "strongly-typed": (BOOL, None),
    "dynamic-properties": (STR, None),
    "warmup-engine": (BOOL, None),
    "stabilize-buffer-count": (INT, None),
    "classifier-type": (STR, None),
    "classifier-threshold": (DOUBLE, lambda v: v >= 0),
    "classifier-async-mode": (BOOL, None),
    "segmentation-threshold": (DOUBLE, lambda v: v >= 0),
    "segmentation-output-order": (INT, {0, 1}),  # NCHW, NHWC
    "output-instance-mask": (BOOL, None),
    "input-object-min-width": (INT, lambda v: v >= 0),
    "input-object-min-height": (INT, lambda v: v >= 0),
    "input-object-max-width": (INT, lambda v: v >= 0),
    "input-object-max-height": (INT, lambda v: v >= 0),
    "operate-on-gie-id": (INT, None),
    "operate-on-class-ids": (INTS, None),
    "filter-out-class-ids": (INTS, None),
}

#: What the segmentation path (network-type=2) needs to run the default parser on a model file:
#: a model (onnx-file or model-engine-file here), and num-detected-classes, which the parser
#: compares with the output's channels (its default, 0, never matches).
SEGMENTATION_REQUIRED = ("network-type", "num-detected-classes")
MODEL_KEYS = ("onnx-file", "model-engine-file")

_INT = re.compile(r"^[ \t]*[+-]?\d+[ \t]*$")
_DOUBLE = re.compile(r"^[ \t]*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[ \t]*$")


def _scalar(kind: str, text: str) -> object:
    if kind == INT:
        if not _INT.match(text):
            raise ValueError(f"{text!r} is not an integer")
        return int(text)
    if kind == DOUBLE:
        if not _DOUBLE.match(text):
            raise ValueError(f"{text!r} is not a number")
        return float(text)
    if kind == BOOL:
        if text.strip() not in ("true", "false", "1", "0"):
            raise ValueError(f"{text!r} is not true/false/1/0")
        return text.strip() in ("true", "1")
    return text


def parse_keyfile(text: str) -> dict[str, dict[str, str]]:
    """GKeyFile text -> {group: {key: raw value}}; a line that is not a comment, blank, group or
    ``key=value`` inside a group, or a repeated key, raises ValueError."""
    groups: dict[str, dict[str, str]] = {}
    current: str | None = None
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line.startswith("[") and line.rstrip().endswith("]"):
            current = line.strip()[1:-1]
            if current in groups:
                raise ValueError(f"line {n}: group [{current}] twice")
            groups[current] = {}
            continue
        if current is None or "=" not in line:
            raise ValueError(f"line {n}: {line!r} is not key=value inside a group")
        key, value = line.split("=", 1)
        key = key.strip()
        if key in groups[current]:
            raise ValueError(f"line {n}: key {key} twice in [{current}]")
        groups[current][key] = value.lstrip()
    return groups


def check_nvinfer_config(path: Path) -> dict[str, object]:
    """Apply gst-nvinfer 9.1's rules to every key and value of ``path``; returns the parsed
    ``[property]`` values; raises ValueError naming the first key that breaks a rule."""
    groups = parse_keyfile(path.read_text(encoding="utf-8"))
    if "property" not in groups:
        raise ValueError("no [property] group (nvinfer: 'Could not find group property')")
    extra = set(groups) - {"property"}
    if extra:
        raise ValueError(f"groups {sorted(extra)}: class-attrs-* are for detectors only")
    values: dict[str, object] = {}
    for key, raw in groups["property"].items():
        if key not in RULES:
            raise ValueError(f"unknown key {key!r} (nvinfer: 'Unknown or legacy key specified')")
        kind, check = RULES[key]
        if kind in (INTS, DOUBLES, STRS):
            items = raw.rstrip().removesuffix(";").split(";")
            scalar = {INTS: INT, DOUBLES: DOUBLE, STRS: STR}[kind]
            value: object = [_scalar(scalar, item) for item in items]
        else:
            value = _scalar(kind, raw)
        if isinstance(check, set) and value not in check:
            raise ValueError(f"{key}={raw}: nvinfer accepts {sorted(check)}")
        if callable(check) and not check(value):
            raise ValueError(f"{key}={raw}: refused by nvinfer's range check")
        values[key] = value
    if values.get("network-type") == 2:
        missing = [k for k in SEGMENTATION_REQUIRED if k not in values]
        if missing or not any(k in values for k in MODEL_KEYS):
            raise ValueError(f"segmentation config lacks {missing or list(MODEL_KEYS)}")
        dims = values.get("infer-dims")
        if dims is not None and values.get("model-color-format", 0) in (0, 1) and dims[0] != 3:
            raise ValueError(f"infer-dims {dims}: an RGB/BGR input has 3 channels")
    return values
