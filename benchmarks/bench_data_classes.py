"""``segpipe data`` on a data set that declares the most classes segpipe takes (65,535).

It writes, in a temporary folder deleted at the end, a CVAT "Segmentation mask 1.1" export whose
``labelmap.txt`` lists 65,535 labels (label i coloured i // 256, i % 256, 0) and one 8x8 mask using
three of them, then times, each in a fresh subprocess:

* ``read_labelmap`` alone (its duplicate checks compared each label with all before it);
* ``python -m segpipe data ROOT`` as a user runs it (output to a file; rich draws the same table).

and prints wall and CPU seconds. ``--tree DIR`` runs another checkout's segpipe (e.g. an older
commit unpacked with ``git archive COMMIT segpipe | tar -x -C DIR``) for a before/after figure.
A benchmark, not a test: it prints figures.

    .venv/bin/python benchmarks/bench_data_classes.py
    .venv/bin/python benchmarks/bench_data_classes.py --tree /tmp/before --labels 20000
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def write_cvat(root: Path, labels: int) -> None:
    """The export described in the module docstring."""
    for d in ("SegmentationClass", "JPEGImages"):
        (root / d).mkdir(parents=True)
    rows = "".join(f"c{i}:{i // 256},{i % 256},0::\n" for i in range(labels))
    (root / "labelmap.txt").write_text("# label:color_rgb:parts:actions\n" + rows)
    mask = np.zeros((8, 8, 3), np.uint8)
    mask[:4, :4] = (1, 2, 0)
    mask[4:, 4:] = ((labels - 1) // 256, (labels - 1) % 256, 0)
    Image.fromarray(mask).save(root / "SegmentationClass" / "a.png")
    Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).save(root / "JPEGImages" / "a.jpg")


def timed(args: list[str], tree: Path, out: Path) -> tuple[float, float]:
    """(wall s, CPU s) of one subprocess importing segpipe from ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree), "COLUMNS": "100"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(out, "wb") as f:
        # run from the output's folder: from the current one, ``-m`` would import the segpipe there
        subprocess.run(
            [sys.executable, *args], env=env, cwd=out.parent, stdout=f, stderr=subprocess.STDOUT, check=True
        )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", type=int, default=65535)
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "cvat"
        write_cvat(root, args.labels)
        code = "from pathlib import Path; from segpipe.data.formats.cvat import read_labelmap; read_labelmap(Path(%r))"
        load = os.getloadavg()[0]
        print(f"segpipe from {args.tree}, {args.labels:,} labels, load {load:.1f} on {os.cpu_count()} CPUs")
        wall, cpu = timed(["-c", code % str(root / "labelmap.txt")], args.tree, Path(tmp) / "labelmap.out")
        print(f"read_labelmap        wall {wall:7.2f} s   CPU {cpu:7.2f} s")
        wall, cpu = timed(["-m", "segpipe", "data", str(root)], args.tree, Path(tmp) / "data.out")
        lines = len((Path(tmp) / "data.out").read_text(errors="replace").splitlines())
        print(f"segpipe data         wall {wall:7.2f} s   CPU {cpu:7.2f} s   ({lines:,} lines printed)")
        check = "import segpipe; print(segpipe.__file__)"
        subprocess.run(
            [sys.executable, "-c", check], env={**os.environ, "PYTHONPATH": str(args.tree)}, cwd=tmp
        )


if __name__ == "__main__":
    main()
