"""``segpipe export-onnx``: flags (original and modern spellings) -> OnnxExportOptions -> ``export_onnx``.

One name for the file, ``--output/-o FILE``, and one for what the graph returns, ``--output-kind
logits|probs|labels``. The original tool's spellings keep working without being advertised:
``--model_out FILE`` (a hidden alias of ``--output``) and ``--output labels`` (a kind given to
``--output``: the two never clash, since a file must end in ``.onnx``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segpipe.cli.binder import Flags, command
from segpipe.cli.common import console, make_table, print_written, say
from segpipe.errors import ConfigError
from segpipe.options.declare import Panel
from segpipe.options.export import ONNX_OUTPUT_KINDS, OnnxExportOptions
from segpipe.options.flags import QuietFlag
from segpipe.options.quantize import (
    CALIB_COUNT,
    CALIB_IMAGES,
    CALIB_METHOD,
    INT8_AGREEMENT,
    QUANTIZER,
    QuantizeOptions,
)
from segpipe.outpaths import check_output_file
from segpipe.units import human_bytes, output_layout, tensor_text

INT8 = Panel("INT8 (Q/DQ for TensorRT)")


# fmt: off
@dataclass(frozen=True)
class Int8Flags:
    """``export-onnx --int8``: the quantize step chained after the export (its flags, declared
    once in :mod:`segpipe.options.quantize`, placed here under export-onnx's INT8 panel)."""

    int8: bool = INT8.flag("--int8", False,
        "Also write NAME.int8.onnx: INT8 Q/DQ, calibrated on --calib-images, gated against the FP32 graph.")
    calib_images: Path | None = CALIB_IMAGES(default=None, panel=INT8)
    calib_count: int = CALIB_COUNT(panel=INT8)
    method: str = CALIB_METHOD(panel=INT8)
    quantizer: str = QUANTIZER(panel=INT8)
    int8_min_agreement: float | None = INT8_AGREEMENT(hidden=(), panel=INT8)
# fmt: on


def split_output_values(values: list[str], output_kind: str | None) -> tuple[Path | None, str]:
    """Sort the ``--output`` values (files, and the original ``--output logits``) into the file
    path and the output kind; one-line error on a clash."""
    kinds = [v for v in values if v.lower() in ONNX_OUTPUT_KINDS]
    paths = [Path(v) for v in values if v.lower() not in ONNX_OUTPUT_KINDS]
    for p in paths:
        if p.suffix.lower() != ".onnx":
            raise ConfigError(
                f"--output {p}: the ONNX file must end in .onnx (or give "
                f"{', '.join(ONNX_OUTPUT_KINDS)}: what the graph returns)"
            )
    if output_kind is not None:
        kinds.append(output_kind)
    if len({str(p) for p in paths}) > 1:
        raise ConfigError(f"--output: two output files given ({', '.join(map(str, paths))})")
    if len({k.lower() for k in kinds}) > 1:
        raise ConfigError(f"--output/--output-kind: two output kinds given ({', '.join(kinds)})")
    default = OnnxExportOptions.__dataclass_fields__["output_kind"].default
    return (paths[0] if paths else None), (kinds[0].lower() if kinds else default)


def int8_options(flags: Flags, opts: OnnxExportOptions) -> QuantizeOptions | None:
    """The INT8 step's options, checked before the export starts (a typo costs no export)."""
    from segpipe.export.quantize import image_files

    if not flags.int8 and flags.calib_images is None:
        return None
    if not flags.int8:
        raise ConfigError("--calib-images is for --int8; add --int8 (or drop --calib-images)")
    if flags.calib_images is None:
        raise ConfigError(
            "--int8 needs --calib-images DIR: a folder of images like the ones the model will see"
        )
    if opts.half:
        raise ConfigError("--int8 with --half: an INT8 graph is quantized from the FP32 one; drop --half")
    image_files(flags.calib_images, "--calib-images")
    qopts = flags.build(
        QuantizeOptions,
        model=opts.resolved_output,
        output=None,
        verify_images=opts.verify_images,
        min_agreement=flags.int8_min_agreement,
        data_root=None,
    )
    check_output_file(qopts.resolved_output, "--output", (opts.model,), "model.int8.onnx")
    return qopts


@command(OnnxExportOptions, Int8Flags, QuietFlag)
def export_onnx_command(flags: Flags) -> None:
    """Export a checkpoint to a deployable, verified ONNX model (NHWC RGB 0-255 in, normalisation inside)."""
    from segpipe.cli.common import RichReporter
    from segpipe.export.onnx import export_onnx

    kind = flags.output_kind if "output_kind" in flags.given else None
    out, kind = split_output_values(list(flags.output or []), kind)
    opts = flags.build(OnnxExportOptions, output=out, output_kind=kind)
    check_output_file(opts.resolved_output, "--output", (opts.model, opts.colors), "model.onnx")
    qopts = int8_options(flags, opts)
    result = export_onnx(opts, RichReporter(quiet=flags.quiet))
    render_result(result)
    if qopts is not None:
        from segpipe.cli.quantize import render_result as render_int8
        from segpipe.export.quantize import quantize

        render_int8(quantize(qopts.replace(model=result.path), RichReporter(quiet=flags.quiet)))


def render_result(result: Any) -> None:
    """The summary: file, size, opset, shapes, node counts, verification figures, time."""
    info = result.info
    nodes = str(result.nodes_exported)
    if result.nodes_simplified is not None:
        nodes += f" -> {result.nodes_simplified} (simplified)"
    rows = [
        ("file", str(result.path)),
        ("size", human_bytes(result.size_mb * 1e6)),
        ("opset", f"{result.opset} ({getattr(result, 'exporter', 'torchscript')} exporter)"),
    ]
    rows += [("input", tensor_text(s.name, s.shape, s.dtype, info.layout)) for s in result.inputs]
    out_layout = output_layout(info.output_kind)
    for spec in result.outputs:
        rows.append(
            ("output", f"{tensor_text(spec.name, spec.shape, spec.dtype, out_layout)} ({info.output_kind})")
        )
    rows += [
        ("precision", info.precision),
        ("classes", f"{info.num_classes} ({info.mode})"),
        ("nodes", nodes),
        ("time", f"{result.seconds:.1f} s"),
    ]
    console.print(make_table(f"ONNX export of {info.arch}/{info.encoder}", rows))
    ver = result.verification
    if ver is None:
        say("not verified", "yellow", " (--no-verify)")
    else:
        from segpipe.runtime.comparator import COMPARE_COLUMNS

        title = f"verification: ONNX Runtime vs PyTorch (min agreement {ver.min_agreement:g})"
        console.print(make_table(title, ver.rows(), COMPARE_COLUMNS, left=COMPARE_COLUMNS[:1]))
        say(
            "verified",
            "green",
            f": onnx.checker {ver.checker}; argmax agreement "
            f"{100 * ver.worst.argmax_agreement:.3f}% >= {100 * ver.min_agreement:g}%",
        )
    print_written(result.path, "ONNX model")
