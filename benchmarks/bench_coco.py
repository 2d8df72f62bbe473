"""Opening a COCO JSON the size of ``instances_train2017.json``: segpipe's COCO reader next to
pycocotools' ``COCO()`` on the same file.

It writes, in a temporary folder deleted at the end, a COCO instances file of the real one's shape
(118,287 images of 640x480, 860,001 annotations over 80 category ids 1..90; polygons of 12 to 40
points with two-decimal coordinates, about 1% crowds as uncompressed RLE, each drawn from a pool of
40,000 polygons and 2,000 RLEs: about 450 MB, like the real file) and one empty file per image (the reader checks that each image exists; it never
decodes one here). Then, each in a fresh subprocess so the peak memory is that tool's alone:

* segpipe: ``open_dataset(root, "coco").samples()`` (parse, check, index, list and confine the
  images), then ``read_mask`` of 100 images spread over the file (timed once, then the best of
  three rounds: the first round may hold a one-off garbage-collector pass over the parsed file);
* pycocotools: ``COCO(path)`` (parse and index), then the same 100 images' masks composed from
  ``annToMask`` of each of their annotations (larger first, crowds as 255, as segpipe draws).

and prints wall seconds for each step and the peak resident memory (``VmHWM``) of each process.
A benchmark, not a test: it prints figures.

    .venv/bin/python benchmarks/bench_coco.py                   # the full size (a few minutes)
    .venv/bin/python benchmarks/bench_coco.py --images 5000     # smaller, same shape
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CATEGORY_IDS = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]
W, H = 640, 480


def _polygon(rng: np.random.Generator, n: int) -> str:
    """One polygon around a random centre, ``n`` points, two decimals, as COCO writes them."""
    cx, cy = rng.uniform(40, W - 40), rng.uniform(40, H - 40)
    r = rng.uniform(5, 40, n)
    t = np.sort(rng.uniform(0, 2 * np.pi, n))
    xy = np.stack([np.clip(cx + r * np.cos(t), 0, W - 1), np.clip(cy + r * np.sin(t), 0, H - 1)], 1)
    return "[[" + ",".join(f"{v:.2f}" for v in xy.ravel()) + "]]"


def _crowd_rle(rng: np.random.Generator) -> str:
    """An uncompressed RLE (column-major runs from 0) of a rectangle, as COCO stores crowds."""
    x0, y0 = int(rng.integers(0, W - 100)), int(rng.integers(0, H - 100))
    w, h = int(rng.integers(20, 100)), int(rng.integers(20, 100))
    counts = [x0 * H + y0] + [h, H - h] * (w - 1) + [h, W * H - (x0 * H + y0) - (w - 1) * H - h]
    return '{"counts":[' + ",".join(map(str, counts)) + f'],"size":[{H},{W}]}}'


def write_coco(root: Path, images: int, annotations: int, seed: int = 0) -> Path:
    """``root/annotations/instances_train2017.json`` of the given size, and empty image files."""
    rng = np.random.default_rng(seed)
    (root / "annotations").mkdir(parents=True)
    (root / "train2017").mkdir()
    path = root / "annotations" / "instances_train2017.json"
    image_of = np.sort(rng.integers(1, images + 1, annotations))
    with open(path, "w", encoding="utf-8") as f:
        f.write('{"info":{"description":"bench_coco","version":"1.0","year":2017},"licenses":[],"images":[')
        for i in range(1, images + 1):
            name = f"{i:012d}.jpg"
            (root / "train2017" / name).touch()
            f.write(("," if i > 1 else "") + json.dumps(
                {"license": 1, "file_name": name, "coco_url": "", "height": H, "width": W,
                 "date_captured": "2013-11-14 16:28:13", "flickr_url": "", "id": i}))  # fmt: skip
        f.write('],"annotations":[')
        crowd = rng.random(annotations) < 0.01
        cats = rng.choice(CATEGORY_IDS, annotations)
        # a pool of distinct segmentations, drawn at random: writing stays quick, and parsing
        # builds a new object for every one as with distinct ones
        polys = [_polygon(rng, int(n)) for n in rng.integers(12, 41, min(annotations, 40_000))]
        rles = [_crowd_rle(rng) for _ in range(min(annotations, 2_000))]
        pick_poly = rng.integers(0, len(polys), annotations)
        pick_rle = rng.integers(0, len(rles), annotations)
        for k in range(annotations):
            seg = rles[pick_rle[k]] if crowd[k] else polys[pick_poly[k]]
            f.write(
                ("," if k else "")
                + f'{{"segmentation":{seg},"area":{rng.uniform(50, 5000):.2f},"iscrowd":{int(crowd[k])},'
                f'"image_id":{int(image_of[k])},"bbox":[10.0,20.0,30.0,40.0],"category_id":{int(cats[k])},'
                f'"id":{k + 1}}}'
            )
        f.write('],"categories":[')
        f.write(
            ",".join(json.dumps({"supercategory": "thing", "id": c, "name": f"cat{c}"}) for c in CATEGORY_IDS)
        )
        f.write("]}")
    return path


SEGPIPE = r"""
import json, sys, time, warnings
warnings.simplefilter("ignore")
from segpipe.data.formats import open_dataset
root, picks = sys.argv[1], json.loads(sys.argv[2])
t0, c0 = time.perf_counter(), time.process_time()
reader = open_dataset(root, "coco")
samples = reader.samples()
t1, c1 = time.perf_counter(), time.process_time()
by_id = {s.key[1]: s for s in samples}
def masks():
    return sum(int((reader.read_mask(by_id[i]) > 0).sum()) for i in picks)

"""

PYCOCOTOOLS = r"""
import json, sys, time, warnings
warnings.simplefilter("ignore")
import numpy as np
from pycocotools.coco import COCO
root, picks = sys.argv[1], json.loads(sys.argv[2])
t0, c0 = time.perf_counter(), time.process_time()
coco = COCO(root + "/annotations/instances_train2017.json")
t1, c1 = time.perf_counter(), time.process_time()
def masks():
    pixels = 0
    for i in picks:
        im = coco.imgs[i]
        out = np.zeros((im["height"], im["width"]), np.uint8)
        anns = sorted(coco.loadAnns(coco.getAnnIds(imgIds=[i])), key=lambda a: (not a["iscrowd"], -a["area"]))
        for a in anns:
            out[coco.annToMask(a).astype(bool)] = 255 if a["iscrowd"] else a["category_id"]
        pixels += int((out > 0).sum())
    return pixels

"""

REPORT = r"""
pixels = masks()
t2, c2 = time.perf_counter(), time.process_time()
again = []  # the same 100 masks twice more: the best round, with one-off costs (a GC pass) left out
for _ in range(2):
    a, b = time.perf_counter(), time.process_time()
    masks()
    again.append((time.perf_counter() - a, time.process_time() - b))
best = min([(t2 - t1, c2 - c1), *again])
status = open("/proc/self/status").read()
hwm = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
print(json.dumps({"open_s": t1 - t0, "masks_s": t2 - t1, "open_cpu": c1 - c0, "masks_cpu": c2 - c1,
                  "best_s": best[0], "best_cpu": best[1], "peak_mb": hwm / 1024, "pixels": pixels}))
"""


def run(code: str, root: Path, picks: list[int]) -> dict:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    out = subprocess.run(
        [sys.executable, "-c", code + REPORT, str(root), json.dumps(picks)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    if out.returncode:
        raise SystemExit(f"failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=118_287)
    parser.add_argument("--annotations", type=int, default=None, help="default: 7.27 per image (860,001)")
    parser.add_argument(
        "--keep", type=Path, default=None, help="write the data set here (or reuse it) and keep it"
    )
    args = parser.parse_args()
    annotations = args.annotations or round(args.images * 860_001 / 118_287)
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench_coco."))
    try:
        t = time.perf_counter()
        path = root / "annotations" / "instances_train2017.json"
        if not path.is_file():  # --keep DIR holding one already: measure it again
            path = write_coco(root, args.images, annotations)
        print(
            f"wrote {path.stat().st_size / 1e6:.0f} MB: {args.images:,} images, {annotations:,} annotations "
            f"({time.perf_counter() - t:.0f} s)"
        )
        picks = np.linspace(1, args.images, 100).astype(int).tolist()
        results = {"segpipe": run(SEGPIPE, root, picks), "pycocotools": run(PYCOCOTOOLS, root, picks)}
        print(
            f"{'':12} {'open s (CPU s)':>16} {'100 masks s (CPU s)':>21} {'best of 3':>14} {'peak RSS MB':>12}"
        )
        for name, r in results.items():
            print(
                f"{name:12} {r['open_s']:8.1f} ({r['open_cpu']:5.1f}) {r['masks_s']:12.2f} ({r['masks_cpu']:5.2f}) "
                f"{r['best_s']:6.2f} ({r['best_cpu']:4.2f}) {r['peak_mb']:12.0f}"
            )
        s, p = results["segpipe"], results["pycocotools"]
        print(
            f"segpipe / pycocotools: open {s['open_s'] / p['open_s']:.2f}x (CPU {s['open_cpu'] / p['open_cpu']:.2f}x), "
            f"masks {s['masks_s'] / p['masks_s']:.2f}x (CPU {s['masks_cpu'] / p['masks_cpu']:.2f}x; best of 3 "
            f"{s['best_s'] / p['best_s']:.2f}x), "
            f"peak memory {s['peak_mb'] / p['peak_mb']:.2f}x; labelled pixels in the 100 masks "
            f"{s['pixels']:,} vs {p['pixels']:,}"
        )
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
