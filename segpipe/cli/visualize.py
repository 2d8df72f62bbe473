"""``segpipe visualize``: colour masks (and overlays, side-by-side pictures, label PNGs) of any model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segpipe.cli.binder import Flags, command
from segpipe.cli.common import RichReporter, console, fail, say
from segpipe.errors import ConfigError, some
from segpipe.options.flags import OUTPUT_PANEL
from segpipe.options.inference import TtaFlag, VisualizeOptions
from segpipe.units import size_text

_DEFAULT_OUT = Path("runs/visualize")


# fmt: off
@dataclass(frozen=True)
class VisualizeFlags:
    """visualize's flags that no options field holds."""

    exist_ok: bool = OUTPUT_PANEL.flag("--exist-ok", False, "Write into an --output-dir that is (or lies "
        "inside) the --images folder; an input file is never written over.")
# fmt: on


def _check_output_dir(opts: Any, exist_ok: bool) -> None:
    """--output-dir can be written and is not the folder of the images read (unless --exist-ok)."""
    from segpipe.outpaths import check_not_over_inputs, check_output_dir

    check_output_dir(opts.output_dir, "--output-dir", default=opts.output_dir == _DEFAULT_OUT)
    if not exist_ok and opts.images is not None:
        check_not_over_inputs(opts.output_dir, opts.images, "--output-dir", "--exist-ok")


@command(VisualizeOptions, TtaFlag, VisualizeFlags)
def visualize_command(flags: Flags) -> None:
    """Run a model over images and write colour masks at each image's own size, plus a legend."""
    from segpipe.visualize import visualize

    if (flags.images is None) == (flags.data_root is None):
        raise ConfigError(
            "give --images (pictures of any images) or --data-root (a labelled data set), one of them"
        )
    images = flags.images if flags.images is not None else flags.data_root
    opts = flags.build(VisualizeOptions, images=images, **TtaFlag.fields(flags.tta))
    _check_output_dir(opts, flags.exist_ok)
    result = visualize(opts, RichReporter())
    total = result.images + len(result.failed)
    how = f"{result.backend} at {size_text(result.size)}" + (
        f" ({result.inference})" if result.inference else ""
    )
    if total:
        console.print(
            f"visualized {result.images} of {total} image(s) with {how} in "
            f"{result.seconds - result.video_seconds:.1f} s ({result.images_per_second:.1f} images/s)"
        )
    if result.videos:
        console.print(
            f"visualized {result.frames} frame(s) of {len(result.videos)} video(s) with {how} in "
            f"{result.video_seconds:.1f} s ({result.frames_per_second:.1f} frames/s)"
        )
    for video in result.videos:
        say("wrote", "green", f" video {video}")
    if result.class_pixels:
        console.print("classes present: " + ", ".join(result.class_pixels))
    legend = f" (legend: {result.legend})" if result.legend else ""
    say("wrote", "green", f" {result.where()}{legend}")
    if result.failed:
        raise fail(
            f"{len(result.failed)} of {total} image(s) could not be read: "
            + some(str(p) for p, _ in result.failed)
        )
