"""Regenerate the sample dataset bundled in ``segpipe/data/sample`` (used by ``segpipe demo``).

    python scripts/make_sample_data.py

40 JPEG images of 128x128 with RGB colour masks (4 classes, palette in ``colors.csv`` beside
them); well under 1 MB. Deterministic (seed 0). The images are photo-like scenes (textured ground;
discs, boxes and pipes in natural colours that vary per instance: :mod:`segpipe.data.scenes`), so
the palette colours appear only in the masks and an overlay shows the prediction, not the photo.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from segpipe.data.synthetic import make_dataset

OUT = Path(__file__).resolve().parents[1] / "segpipe" / "data" / "sample"

if __name__ == "__main__":
    if OUT.exists():
        shutil.rmtree(OUT)
    make_dataset(
        OUT,
        count=40,
        size=(128, 128),
        num_classes=4,
        color_masks=True,
        image_ext=".jpg",
        seed=0,
        natural=True,
    )
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {OUT} ({total / 1e6:.2f} MB)")
