"""segpipe's layout readers next to datumaro's own importers, pixel by pixel.

Writes data sets as their tools write them (``tests/layout_writers.py``: CVAT for images 1.1 XML
from CVAT's XML writer with random polygons, boxes, RLE masks and z orders; datumaro's common
semantic segmentation and CamVid exports; Mapillary Vistas v1.2 / v2.0), reads them with segpipe,
then with datumaro in another Python (datumaro pins its own OpenCV and Pillow, so it lives in a
separate environment), and prints one row per data set: images, pixels, pixels that differ. For
CVAT the datumaro side runs CVAT's "Segmentation mask 1.1" export steps (``polygons_to_masks``,
``boxes_to_masks``, ``merge_instance_segments``, masks compiled by ``z_order``).

    python -m venv --without-pip /tmp/dm && .venv/bin/pip --python /tmp/dm/bin/python install datumaro
    .venv/bin/python benchmarks/compare_datumaro.py --datumaro-python /tmp/dm/bin/python [--images 40]

Rotated boxes and ellipses are not compared: datumaro's CVAT importer reads neither.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

DATUMARO_SIDE = r"""
import json, os, sys
from pathlib import Path
import numpy as np
import datumaro as dm
from datumaro.components.annotation import AnnotationType, CompiledMask

root, fmt, steps, kw = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
names = json.loads((root.parent / (root.name + ".names.json")).read_text())
ds = dm.Dataset.import_from(str(root), fmt, **kw)
for step in steps:
    ds.transform(step)
cats = ds.categories()[AnnotationType.label]
out = {}
for item in ds:
    masks = [a for a in item.annotations if a.type == AnnotationType.mask]
    h, w = item.media.size
    labels = [names.index(cats[m.label].name) for m in masks]
    cm = CompiledMask.from_instance_masks(masks, instance_labels=labels).class_mask if masks else np.zeros((h, w), np.uint8)
    out[os.path.relpath(item.media.path, root).replace("/", "|")] = cm
np.savez(str(root) + ".datumaro.npz", **out)
"""


def write_all(base: Path, images: int) -> list[tuple[str, str, list[str], dict]]:
    """The data sets: (folder, datumaro format, datumaro steps, importer options)."""
    import layout_writers as W

    rng = np.random.default_rng(7)
    sets = []
    colors = [c for _, c in W.DM_LABELS]
    meta = {
        "labels": [n for n, _ in W.DM_LABELS],
        "label_map": {str(i): n for i, (n, _) in enumerate(W.DM_LABELS)},
        "segmentation_colors": [list(c) for c in colors],
        "background_label": "0",
    }
    for layout in ("flat", "prefixed"):
        d = base / f"css_{layout}"
        (d / "images").mkdir(parents=True)
        (d / "dataset_meta.json").write_text(json.dumps(meta, indent=2))
        for i in range(images):
            ids = W.label_map(i, len(colors), 30, 40)
            img, gt = (f"image_{i:04d}", f"gt_{i:04d}") if layout == "prefixed" else (f"{i:04d}",) * 2
            Image.fromarray(W.noise(30, 40, i)).save(d / "images" / f"{img}.png")
            W.save_bgr(d / "masks" / f"{gt}.png", W.paint(ids, colors))
        opts = {"image_prefix": "image_", "mask_prefix": "gt_"} if layout == "prefixed" else {}
        sets.append((d.name, "common_semantic_segmentation", [], opts))
    d = base / "camvid_datumaro"
    d.mkdir()
    some = [W.CAMVID_SOME[3]] + W.CAMVID_SOME[:3]
    (d / "label_colors.txt").write_text("".join(f"{r} {g} {b} {n}\n" for n, (r, g, b) in some))
    for split in ("train", "val"):
        (d / split).mkdir()
        lines = []
        for k in range(images):
            Image.fromarray(W.noise(30, 40, k)).save(d / split / f"s{k}.png")
            ids = W.label_map(k + len(split), 4, 30, 40)
            W.save_bgr(d / f"{split}annot" / f"s{k}.png", W.paint(ids, [c for _, c in some]))
            lines.append(f"/{split}/s{k}.png {split}annot/s{k}.png")
        (d / f"{split}.txt").write_text("\n".join(lines) + "\n")
    sets.append((d.name, "camvid", [], {}))
    for version, config in (("v2.0", "config_v2.0.json"), ("v1.2", "config_v1.2.json")):
        d = base / f"vistas_{version}"
        d.mkdir()
        cfg = W.vistas_config(4)
        (d / config).write_text(json.dumps(cfg))
        palette = [v for lab in cfg["labels"] for v in lab["color"]]
        for split in ("training", "validation"):
            for sub in ("images", f"{version}/labels", f"{version}/instances"):
                (d / split / sub).mkdir(parents=True)
            for k in range(images):
                ids = W.label_map(k, 4, 30, 40)
                Image.fromarray(W.noise(30, 40, k)).save(d / split / "images" / f"{split[:3]}{k}.jpg")
                im = Image.fromarray(ids, mode="P")
                im.putpalette(palette + [0] * (768 - len(palette)))
                im.save(d / split / f"{version}/labels" / f"{split[:3]}{k}.png")
                Image.fromarray(ids.astype(np.uint16) * 256).save(
                    d / split / f"{version}/instances" / f"{split[:3]}{k}.png"
                )
        sets.append((d.name, "mapillary_vistas", [], {"format_version": version}))
    for project in (False, True):
        d = base / f"cvat_{'project' if project else 'task'}"
        write_random_cvat(W, d, project, images, rng)
        sets.append((d.name, "cvat", ["polygons_to_masks", "boxes_to_masks", "merge_instance_segments"], {}))
    return sets


def write_random_cvat(W, d: Path, project: bool, images: int, rng: np.random.Generator) -> None:  # noqa: N803
    w, h = 64, 48
    d.mkdir()
    with open(d / "annotations.xml", "w", encoding="utf-8") as f:
        xml = W.CvatXmlWriter(f)
        xml.meta(
            "project" if project else "task", W.CVAT_LABELS, ["Train", "Validation"] if project else None
        )
        for k in range(images):
            subset = ("Train", "Validation")[k % 2]
            attrs = {"id": str(k), "name": f"img{k}.jpg"}
            if project:
                attrs.update(subset=subset, task_id="3")
            attrs.update(width=str(w), height=str(h))
            xml.open("image", attrs)
            for s in range(12):
                label, z = W.CVAT_LABELS[int(rng.integers(0, 3))][0], int(rng.integers(0, 3))
                if s % 4 in (0, 3):
                    n = int(rng.integers(3, 8))
                    cx, cy = rng.uniform(5, w - 5), rng.uniform(5, h - 5)
                    ang, rad = np.sort(rng.uniform(0, 2 * np.pi, n)), rng.uniform(3, 15, n)
                    pts = [
                        (float(np.clip(cx + r * np.cos(a), 0, w)), float(np.clip(cy + r * np.sin(a), 0, h)))
                        for a, r in zip(ang, rad, strict=True)
                    ]
                    xml.shape("polygon", label, z, points=W.cvat_points(pts))
                elif s % 4 == 1:
                    x0, y0 = rng.uniform(0, w - 10), rng.uniform(0, h - 10)
                    x1, y1 = x0 + rng.uniform(2, 20), y0 + rng.uniform(2, 15)
                    xml.shape("box", label, z, xtl=float(x0), ytl=float(y0), xbr=float(x1), ybr=float(y1))
                else:
                    bw, bh = int(rng.integers(3, 15)), int(rng.integers(3, 12))
                    left, top = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
                    blob = rng.random((bh, bw)) > 0.4
                    blob[0, 0] = blob[-1, -1] = True  # CVAT's box is the mask's tight bounds
                    xml.shape("mask", label, z, rle=W.cvat_rle(blob), left=left, top=top, width=bw, height=bh)
            xml.close("image")
            folder = d / "images" / (subset if project else "")
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(W.noise(h, w, k)).save(folder / f"img{k}.jpg")
        xml.end()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datumaro-python", required=True, help="a Python with datumaro installed")
    ap.add_argument("--images", type=int, default=40, help="images per data set (CVAT: 12 shapes each)")
    args = ap.parse_args()
    from segpipe.data.formats import open_dataset

    version = subprocess.run(
        [args.datumaro_python, "-c", "import datumaro; print(datumaro.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    print(
        f"datumaro {version} vs segpipe\n\n| data set | segpipe format | images | pixels | differ |\n|---|---|---|---|---|"
    )
    with tempfile.TemporaryDirectory(prefix="segpipe-dm-") as tmp:
        for name, fmt, steps, kw in write_all(Path(tmp), args.images):
            root = Path(tmp) / name
            reader = open_dataset(root)
            (Path(tmp) / f"{name}.names.json").write_text(json.dumps(list(reader.classes().names)))
            ours = {str(s.image.relative_to(root)): reader.load(s)[1] for s in reader.samples()}
            subprocess.run(
                [
                    args.datumaro_python,
                    "-c",
                    DATUMARO_SIDE,
                    str(root),
                    fmt,
                    json.dumps(steps),
                    json.dumps(kw),
                ],
                check=True,
                capture_output=True,
            )
            theirs = {k.replace("|", "/"): v for k, v in np.load(str(root) + ".datumaro.npz").items()}
            if set(theirs) != set(ours):
                print(
                    f"| {name} | {reader.name} | image sets differ: {sorted(set(theirs) ^ set(ours))[:3]} | | |"
                )
                continue
            px = sum(m.size for m in ours.values())
            diff = sum(int((ours[k] != theirs[k]).sum()) for k in ours)
            print(f"| {name} | {reader.name} | {len(ours)} | {px} | {diff} |")


if __name__ == "__main__":
    main()
