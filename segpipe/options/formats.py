"""The label formats ``--format`` names, declared once (the readers' registry; no imports).

:data:`FORMATS` is what :mod:`segpipe.data.formats` reads readers from (each module imported when
first used) and what ``--format``'s help lists; :func:`check_format` is the one check of the value,
for the options classes and :func:`segpipe.data.formats.resolve_format` alike. The table lives here,
below ``data/`` in ARCHITECTURE.md's layers, because the options (``--help``, the check) and the
readers both need it: a new format is one line here plus its reader module.
"""

from __future__ import annotations

from segpipe.errors import ConfigError

#: ``--format`` name -> its reader (``"module:Class"``), in the order ``--help`` lists them. Which of
#: several formats a folder is read as does not depend on this order (see
#: :func:`segpipe.data.formats.detect_format`).
FORMATS: dict[str, str] = {
    "seed": "segpipe.data.formats.seed:SeedReader",
    "voc": "segpipe.data.formats.voc:VocReader",
    "cityscapes": "segpipe.data.formats.cityscapes:CityscapesReader",
    "ade20k": "segpipe.data.formats.ade20k:Ade20kReader",
    "ultralytics": "segpipe.data.formats.ultralytics:UltralyticsReader",
    "yolo": "segpipe.data.formats.yolo:YoloReader",
    "coco": "segpipe.data.formats.coco:CocoReader",
    "coco_panoptic": "segpipe.data.formats.coco_panoptic:CocoPanopticReader",
    "labelme": "segpipe.data.formats.labelme:LabelmeReader",
    "cvat": "segpipe.data.formats.cvat:CvatReader",
    "cvat_images": "segpipe.data.formats.cvat_xml:CvatXmlReader",
    "mapillary_vistas": "segpipe.data.formats.mapillary:MapillaryReader",
    "common_semantic_segmentation": "segpipe.data.formats.common_semseg:CommonSemSegReader",
    "camvid": "segpipe.data.formats.camvid:CamvidReader",
}


def check_format(value: str) -> str:
    """``--format`` lower-cased and checked: ``auto`` or one of :data:`FORMATS`."""
    name = (value or "auto").lower()
    if name != "auto" and name not in FORMATS:
        raise ConfigError(f"--format {value}: use auto or one of {', '.join(FORMATS)}")
    return name
