"""Options of ``segpipe export-onnx``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segpipe.modelinfo import MODES
from segpipe.options import flags as F
from segpipe.options.base import (
    Agreement,
    ClassCount,
    Count,
    Seed,
    Size,
    check_choice,
    check_fields,
    flag_error,
)
from segpipe.options.declare import Panel

ONNX_EXPORTERS = ("auto", "torchscript", "dynamo")
ONNX_OUTPUT_KINDS = ("logits", "probs", "labels")
ONNX_INPUT_DTYPES = ("float32", "uint8")
GRAPH = Panel("Graph")


@dataclass(frozen=True)
class OnnxExportOptions:
    """Everything ``segpipe export-onnx`` needs. Sizes are (width, height) in pixels."""

    # one declaration a line or two (segpipe.options.declare), kept so by the formatter:
    # fmt: off
    #: The checkpoint to export: a segpipe checkpoint, or a bare state_dict (then ``arch``,
    #: ``encoder`` and ``num_classes`` describe it; defaults Unet / efficientnet-b0 / the head's).
    model: Path = F.MODEL(hidden=("--model_in", "--model-in"), help="Checkpoint to export (.pth).")
    #: The ONNX file to write; default beside the checkpoint with the suffix ``.onnx``. The command
    #: line reads file names and the original ``--output logits|probs|labels`` here (cli/export_onnx).
    output: Path | None = F.OUTPUT(hidden=("--model-out", "--model_out"), cli_type=list[str], metavar="FILE",
        help="ONNX file to write (default: beside the checkpoint, .onnx). The original "
        "--output logits|probs|labels still works, as --output-kind.")
    #: Checked against a segpipe checkpoint; describes a bare state_dict.
    num_classes: ClassCount | None = F.NUM_CLASSES()
    arch: str | None = F.ARCH()
    encoder: str | None = F.ENCODER()
    #: ``seg``, ``binary`` or ``multilabel`` (bare state_dicts only; checkpoints say it themselves).
    mode: str = F.MODE()
    #: Input size (W, H) of the graph; default the training size stored in the checkpoint.
    size: Size | None = F.SIZE(help="WIDTH HEIGHT of the graph (default: the training size in the checkpoint).",
        panel=GRAPH)
    #: ``float32`` (pixel values 0-255) or ``uint8``.
    input_dtype: str = GRAPH.flag("--input-dtype", "float32", "float32 (pixels 0-255) or uint8.", metavar="DTYPE")
    #: ``logits`` (N×C×H×W), ``probs`` (softmax / sigmoid inside the graph) or ``labels`` (N×H×W).
    output_kind: str = GRAPH.flag("--output-kind", "logits", "What the graph returns: logits (N x C x H x W, the "
        "default), probs, or labels (the N x H x W class map, argmax inside the graph).", metavar="KIND",
        show_default=False)
    #: Batch size of the graph (the example batch when the batch axis is dynamic).
    batch: Count = F.BATCH(default=1, help="Batch size of the graph.", panel=GRAPH)
    #: Make the batch axis dynamic.
    dynamic_batch: bool = GRAPH.flag("--dynamic-batch", False, "Dynamic batch axis.")
    #: Make the H and W axes dynamic (sizes must still be multiples of the output stride).
    dynamic_size: bool = GRAPH.flag("--dynamic-size", False, "Dynamic H and W axes.")
    #: ONNX opset; default 17 with the TorchScript exporter, 18 with the dynamo exporter.
    opset: int | None = GRAPH.flag("--opset", None, "ONNX opset (default 17; 18 with --exporter dynamo).")
    #: FP16 graph with FP32 input and output (casts at the ends).
    half: bool = GRAPH.flag("--half", False, "FP16 graph with FP32 input and output (for TensorRT FP16 engines).")
    #: Run onnx-simplifier (on failure the unsimplified graph is kept, with one warning).
    simplify: bool = GRAPH.flag("--simplify/--no-simplify", True, "Run onnx-simplifier.")
    #: Check the graph and compare ONNX Runtime with PyTorch before keeping the file.
    verify: bool = F.VERIFY(help="Check and compare ONNX Runtime with PyTorch before keeping the file.")
    #: A folder of real images to verify on, besides random ones.
    verify_images: Path | None = F.VERIFY_IMAGES(help="Folder of real images to verify on too.")
    #: Random images to verify on.
    verify_random: int = F.VERIFY_PANEL.flag("--verify-random", 2, "Random images to verify on.")
    #: Most images read from ``verify_images``.
    verify_max_images: int = 8
    #: Smallest argmax agreement accepted (0..1); default 0.999 (FP32) or 0.99 (FP16).
    min_agreement: Agreement | None = F.MIN_AGREEMENT(
        help="Smallest argmax agreement accepted (default 0.999; 0.99 with --half).")
    #: ``auto`` (default: TorchScript, and the dynamo exporter, opset 18, for a graph TorchScript
    #: cannot express; said in a note), ``torchscript`` (fast, any opset from 11, plain dynamic
    #: axes; no fallback) or ``dynamo`` (opset 18 and newer).
    exporter: str = GRAPH.flag("--exporter", "auto",
        "auto (TorchScript; dynamo where TorchScript cannot express the graph), torchscript or dynamo.")
    #: Class names (one per class) written into the ONNX metadata; default the checkpoint's, else
    #: ``class_0``... (bare state_dicts).
    class_names: tuple[str, ...] | None = F.CLASS_NAMES(panel=F.MODEL_PANEL, help="Comma-separated class names for "
        "the ONNX metadata (default: the checkpoint's; class_0... for a bare state_dict).")
    #: Palette CSV whose colours (and names, when no ``class_names``) the ONNX metadata carries;
    #: default the checkpoint's colours, else the colors.csv shipped with segpipe.
    colors: Path | None = F.COLORS(panel=F.MODEL_PANEL, help="Palette CSV (as train's) whose colours, and names "
        "unless --class-names, the ONNX metadata carries (default: the checkpoint's).")
    #: Allow full unpickling of a checkpoint holding Python objects (only for trusted files).
    trust_checkpoint: bool = F.TRUST_CHECKPOINT()
    #: Seed of the random verification images.
    seed: Seed = 0
    # fmt: on

    def __post_init__(self) -> None:
        check_fields(self)
        check_choice("--mode", self.mode, MODES)
        if self.num_classes is not None and self.num_classes < 1:
            raise flag_error("--num-classes", self.num_classes, "must be at least 1")
        check_choice("--input-dtype", self.input_dtype, ONNX_INPUT_DTYPES)
        check_choice("--output", self.output_kind, ONNX_OUTPUT_KINDS)
        check_choice("--exporter", self.exporter, ONNX_EXPORTERS)
        lowest = 18 if self.exporter == "dynamo" else 11
        if self.opset is not None and not lowest <= self.opset <= 25:
            why = f"use an opset from {lowest} to 25 with the {self.exporter} exporter"
            raise flag_error("--opset", self.opset, why)
        names = ",".join(self.class_names or ())
        if self.class_names is not None and (not self.class_names or not all(self.class_names)):
            raise flag_error("--class-names", names, "give one non-empty name per class")
        if self.class_names is not None and self.num_classes is not None:
            if len(self.class_names) != self.num_classes:
                why = f"gives {len(self.class_names)} names for {self.num_classes} classes"
                raise flag_error("--class-names", names, why)
        if self.verify_random < 0 or self.verify_max_images < 1:
            raise flag_error(
                "--verify-random", self.verify_random, "must be >= 0 (and --verify-max-images >= 1)"
            )
        if self.verify and self.verify_random == 0 and self.verify_images is None:
            why = "nothing to verify on; give --verify-images DIR or use --no-verify"
            raise flag_error("--verify-random", 0, why)

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
