"""Options of ``segpipe export-onnx``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segpipe.errors import ConfigError
from segpipe.modelinfo import MODES
from segpipe.options import flags as F
from segpipe.options.base import ClassCount, Seed, Size, check_fields
from segpipe.options.declare import flag

ONNX_EXPORTERS = ("auto", "torchscript", "dynamo")
ONNX_OUTPUT_KINDS = ("logits", "probs", "labels")
ONNX_INPUT_DTYPES = ("float32", "uint8")
GRAPH, VERIFY = "Graph", "Verification"


@dataclass(frozen=True)
class OnnxExportOptions:
    """Everything ``segpipe export-onnx`` needs. Sizes are (width, height) in pixels."""

    #: The checkpoint to export: a segpipe checkpoint, or a bare state_dict (then ``arch``,
    #: ``encoder`` and ``num_classes`` describe it; defaults Unet / efficientnet-b0 / the head's).
    model: Path = F.MODEL(hidden=("--model_in", "--model-in"), help="Checkpoint to export (.pth).")
    #: The ONNX file to write; default beside the checkpoint with the suffix ``.onnx``. The command
    #: line reads file names and the original ``--output logits|probs|labels`` here (cli/export_onnx).
    output: Path | None = flag(
        "--output",
        "-o",
        hidden=("--model-out", "--model_out"),
        default=None,
        cli_type=list[str],
        metavar="FILE",
        help="ONNX file to write (default: beside the checkpoint, .onnx). The original "
        "--output logits|probs|labels still works, as --output-kind.",
    )
    #: Checked against a segpipe checkpoint; describes a bare state_dict.
    num_classes: ClassCount | None = F.NUM_CLASSES()
    arch: str | None = F.ARCH()
    encoder: str | None = F.ENCODER()
    #: ``seg``, ``binary`` or ``multilabel`` (bare state_dicts only; checkpoints say it themselves).
    mode: str = F.MODE()
    #: Input size (W, H) of the graph; default the training size stored in the checkpoint.
    size: Size | None = F.SIZE(
        help="WIDTH HEIGHT of the graph (default: the training size in the checkpoint).", panel=GRAPH
    )
    #: ``float32`` (pixel values 0-255) or ``uint8``.
    input_dtype: str = flag(
        "--input-dtype",
        default="float32",
        help="float32 (pixels 0-255) or uint8.",
        panel=GRAPH,
        metavar="DTYPE",
    )
    #: ``logits`` (N×C×H×W), ``probs`` (softmax / sigmoid inside the graph) or ``labels`` (N×H×W).
    output_kind: str = flag(
        "--output-kind",
        default="logits",
        metavar="KIND",
        help="What the graph returns: logits (N x C x H x W, the default), probs, or labels "
        "(the N x H x W class map, argmax inside the graph).",
        show_default=False,
        panel=GRAPH,
    )
    #: Batch size of the graph (the example batch when the batch axis is dynamic).
    batch: int = F.BATCH(default=1, help="Batch size of the graph.", panel=GRAPH)
    #: Make the batch axis dynamic.
    dynamic_batch: bool = flag("--dynamic-batch", default=False, help="Dynamic batch axis.", panel=GRAPH)
    #: Make the H and W axes dynamic (sizes must still be multiples of the output stride).
    dynamic_size: bool = flag("--dynamic-size", default=False, help="Dynamic H and W axes.", panel=GRAPH)
    #: ONNX opset; default 17 with the TorchScript exporter, 18 with the dynamo exporter.
    opset: int | None = flag(
        "--opset",
        default=None,
        help="ONNX opset (default 17; 18 with --exporter dynamo).",
        panel=GRAPH,
        metavar="N",
    )
    #: FP16 graph with FP32 input and output (casts at the ends).
    half: bool = flag(
        "--half",
        default=False,
        help="FP16 graph with FP32 input and output (for TensorRT FP16 engines).",
        panel=GRAPH,
    )
    #: Run onnx-simplifier (on failure the unsimplified graph is kept, with one warning).
    simplify: bool = flag("--simplify/--no-simplify", default=True, help="Run onnx-simplifier.", panel=GRAPH)
    #: Check the graph and compare ONNX Runtime with PyTorch before keeping the file.
    verify: bool = flag(
        "--verify/--no-verify",
        default=True,
        help="Check and compare ONNX Runtime with PyTorch before keeping the file.",
        panel=VERIFY,
    )
    #: A folder of real images to verify on, besides random ones.
    verify_images: Path | None = flag(
        "--verify-images",
        default=None,
        help="Folder of real images to verify on too.",
        panel=VERIFY,
        metavar="DIR",
    )
    #: Random images to verify on.
    verify_random: int = flag(
        "--verify-random", default=2, help="Random images to verify on.", panel=VERIFY, metavar="N"
    )
    #: Most images read from ``verify_images``.
    verify_max_images: int = 8
    #: Smallest argmax agreement accepted (0..1); default 0.999 (FP32) or 0.99 (FP16).
    min_agreement: float | None = flag(
        "--min-agreement",
        default=None,
        help="Smallest argmax agreement accepted (default 0.999; 0.99 with --half).",
        panel=VERIFY,
        metavar="NUM",
    )
    #: ``auto`` (default: TorchScript, and the dynamo exporter, opset 18, for a graph TorchScript
    #: cannot express; said in a note), ``torchscript`` (fast, any opset from 11, plain dynamic
    #: axes; no fallback) or ``dynamo`` (opset 18 and newer).
    exporter: str = flag(
        "--exporter",
        default="auto",
        help="auto (TorchScript; dynamo where TorchScript cannot express the graph), torchscript or dynamo.",
        panel=GRAPH,
        metavar="NAME",
    )
    #: Class names (one per class) written into the ONNX metadata; default the checkpoint's, else
    #: ``class_0``... (bare state_dicts).
    class_names: tuple[str, ...] | None = F.CLASS_NAMES(
        help="Comma-separated class names for the ONNX metadata (default: the checkpoint's; "
        "class_0... for a bare state_dict).",
        panel=F.MODEL_PANEL,
    )
    #: Palette CSV whose colours (and names, when no ``class_names``) the ONNX metadata carries;
    #: default the checkpoint's colours, else the colors.csv shipped with segpipe.
    colors: Path | None = F.COLORS(
        help="Palette CSV (as train's) whose colours, and names unless --class-names, the ONNX "
        "metadata carries (default: the checkpoint's).",
        panel=F.MODEL_PANEL,
    )
    #: Allow full unpickling of a checkpoint holding Python objects (only for trusted files).
    trust_checkpoint: bool = F.TRUST_CHECKPOINT()
    #: Seed of the random verification images.
    seed: Seed = 0

    def __post_init__(self) -> None:
        check_fields(self)

        def bad(flag: str, value: Any, why: str) -> ConfigError:
            return ConfigError(f"--{flag} {value}: {why}")

        if self.mode not in MODES:
            raise bad("mode", self.mode, f"use one of {', '.join(MODES)}")
        if self.num_classes is not None and self.num_classes < 1:
            raise bad("num-classes", self.num_classes, "must be at least 1")
        if self.size is not None and (len(self.size) != 2 or min(self.size) <= 0):
            raise bad("size", " ".join(map(str, self.size)), "give WIDTH HEIGHT, both positive")
        if self.input_dtype not in ONNX_INPUT_DTYPES:
            raise bad("input-dtype", self.input_dtype, f"use one of {', '.join(ONNX_INPUT_DTYPES)}")
        if self.output_kind not in ONNX_OUTPUT_KINDS:
            raise bad("output", self.output_kind, f"use one of {', '.join(ONNX_OUTPUT_KINDS)}")
        if self.batch < 1:
            raise bad("batch", self.batch, "must be at least 1")
        if self.exporter not in ONNX_EXPORTERS:
            raise bad("exporter", self.exporter, f"use one of {', '.join(ONNX_EXPORTERS)}")
        lowest = 18 if self.exporter == "dynamo" else 11
        if self.opset is not None and not lowest <= self.opset <= 25:
            why = f"use an opset from {lowest} to 25 with the {self.exporter} exporter"
            raise bad("opset", self.opset, why)
        if self.min_agreement is not None and not 0.0 < self.min_agreement <= 1.0:
            raise bad("min-agreement", self.min_agreement, "must be in (0, 1]")
        if self.class_names is not None and (not self.class_names or not all(self.class_names)):
            raise bad("class-names", ",".join(self.class_names), "give one non-empty name per class")
        if self.class_names is not None and self.num_classes is not None:
            if len(self.class_names) != self.num_classes:
                why = f"gives {len(self.class_names)} names for {self.num_classes} classes"
                raise bad("class-names", ",".join(self.class_names), why)
        if self.verify_random < 0 or self.verify_max_images < 1:
            raise bad("verify-random", self.verify_random, "must be >= 0 (and --verify-max-images >= 1)")
        if self.verify and self.verify_random == 0 and self.verify_images is None:
            raise bad("verify-random", 0, "nothing to verify on; give --verify-images DIR or use --no-verify")

    @property
    def resolved_opset(self) -> int:
        """The opset used: the one asked for, else 17 (TorchScript) or 18 (dynamo)."""
        return self.opset if self.opset is not None else (18 if self.exporter == "dynamo" else 17)

    @property
    def resolved_min_agreement(self) -> float:
        """The agreement threshold used: the one asked for, else 0.999 (FP32) or 0.99 (FP16)."""
        if self.min_agreement is not None:
            return self.min_agreement
        return 0.99 if self.half else 0.999

    @property
    def resolved_output(self) -> Path:
        """The ONNX path written: ``output``, else the checkpoint's path with ``.onnx``."""
        return self.output if self.output is not None else self.model.with_suffix(".onnx")

    def replace(self, **changes: Any) -> OnnxExportOptions:
        return dataclasses.replace(self, **changes)
