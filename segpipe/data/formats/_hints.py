"""What to say when no label format is found in a data root (used by :func:`detect_format`).

* :func:`not_segmentation`: layouts segpipe recognises that hold no masks (Pascal VOC detection
  boxes, Cityscapes images without ``gtFine/``): one line saying why and what to fetch or export.
* :func:`nearby`: the data root pointed one folder too deep (``VOC2012/JPEGImages``,
  ``cityscapes/leftImg8bit``, ``coco/images``) or one too shallow (``VOCdevkit`` holding
  ``VOC2012``): the folder that is a data set.
* :data:`FORMATS_HINT`: where the list of layouts is (``segpipe data --formats``).

Cheap: looks at names in at most a few folders. No torch here.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

#: Where the user finds every layout segpipe reads and the files that identify each.
FORMATS_HINT = "segpipe data --formats lists the layouts segpipe reads"

#: Layouts segpipe recognises that hold no masks: (what, the files, what to do instead), for
#: ``segpipe data --formats``; each is refused in one line when met.
REFUSED = (
    ("Pascal VOC detection", "Annotations/*.xml + JPEGImages/, no SegmentationClass/", "export the masks"),
    (
        "Cityscapes images only",
        "leftImg8bit/ without gtFine/ (or gtCoarse/ only)",
        "unpack gtFine_trainvaltest.zip",
    ),
    ("CVAT for video 1.1", "annotations.xml of <track> elements", "export as 'CVAT for images 1.1'"),
    (
        "CVAT XML of lines/points",
        "annotations.xml without polygons, boxes, ellipses or masks",
        "annotate areas",
    ),
    ("YOLO detection", "labels/*.txt of 'cls cx cy w h' boxes", "YOLO segmentation (polygon) labels"),
    ("COCO detection", "instances JSON whose annotations have no 'segmentation'", "export with masks"),
)

#: Sub-folders looked at for a data set one level down.
MAX_CHILDREN = 32


def _has(folder: Path, pattern: str, limit: int = 200) -> bool:
    for n, p in enumerate(folder.glob(pattern)):
        if p.is_file():
            return True
        if n >= limit:
            break
    return False


def not_segmentation(root: Path) -> str | None:
    """One line when ``root`` is a layout that cannot be a semantic-segmentation source."""
    if (
        (root / "Annotations").is_dir()
        and (root / "JPEGImages").is_dir()
        and _has(root / "Annotations", "*.xml")
    ):
        return (
            f"{root}: Pascal VOC detection (Annotations/*.xml boxes, no SegmentationClass/ masks) cannot "
            "train segmentation; export the masks (VOC 'SegmentationClass/', or CVAT's 'Segmentation "
            "mask 1.1' / 'CVAT for images 1.1' with polygons)"
        )
    if (root / "leftImg8bit").is_dir() and (root / "gtCoarse").is_dir() and not (root / "gtFine").is_dir():
        return (
            f"{root}: Cityscapes with coarse labels only (gtCoarse/); segpipe reads the fine ones: unpack "
            "gtFine_trainvaltest.zip beside it (gtFine/SPLIT/CITY/*_gtFine_labelIds.png)"
        )
    if (root / "leftImg8bit").is_dir() and not (root / "gtFine").is_dir():
        return (
            f"{root}: Cityscapes images (leftImg8bit/) without labels; unpack gtFine_trainvaltest.zip "
            "beside it (gtFine/SPLIT/CITY/*_gtFine_labelIds.png)"
        )
    return None


def nearby(root: Path, detect: Callable[[Path], tuple[str, str] | None]) -> str | None:
    """A hint naming the parent (or grandparent) folder, or the one sub-folder, that ``detect``
    finds a data set in; ``detect(folder)`` gives (format, reason) or None."""
    try:
        here = root.resolve()
    except OSError:
        return None
    for up, what in ((here.parent, "the parent folder"), (here.parent.parent, "the folder two levels up,")):
        if up == here or up == up.parent:  # never offer the file system root
            break
        found = detect(up)
        if found:
            return f"{what} {up} is a {found[0]} data set with {found[1]}: use --data-root {up}"
    try:
        entries = itertools.islice(here.iterdir(), 50 * MAX_CHILDREN)
        children = sorted(itertools.islice((p for p in entries if p.is_dir()), MAX_CHILDREN))
    except OSError:
        return None
    hits = [(c, f) for c in children if (f := detect(c))]
    if len(hits) == 1:
        child, found = hits[0]
        return f"the folder {child} is a {found[0]} data set with {found[1]}: use --data-root {child}"
    if hits:
        listed = ", ".join(f"{c.name}/ ({f[0]})" for c, f in hits[:6])
        return f"its sub-folders {listed} are data sets: use --data-root {hits[0][0]} (or another of them)"
    return None
