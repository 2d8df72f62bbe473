"""Writes the LabelMe fixtures of tests/test_formats_foreign.py with labelme's own code.

Run once, in a virtual environment holding labelme (not a segpipe dependency: it pulls Qt):
``python -m venv /tmp/venv-labelme && /tmp/venv-labelme/bin/pip install labelme`` then
``/tmp/venv-labelme/bin/python tests/data/labelme_embedded/make_fixtures.py``. Committed outputs:

* ``old.json``: the picture only in ``imageData`` and ``imagePath`` naming the JSON itself (what
  some labelme 4.x saves hold); no picture beside it;
* ``both.json`` + ``both.png``: ``imageData`` and the picture file, the same size;
* ``NAME.expected.png``: labelme's own reading of each JSON, ``LabelFile(NAME.json)`` then
  ``utils.shapes_to_label`` with ``_background_`` = 0 and the sorted labels 1..K (what
  ``labelme_json_to_dataset`` does), as an 8-bit PNG;
* ``NAME.image.png``: the picture labelme reads from the JSON (``utils.img_data_to_arr``).
"""

from pathlib import Path

import labelme
import numpy as np
import PIL.Image

HERE = Path(__file__).parent


def shape(label, points, shape_type):
    return {"label": label, "points": points, "group_id": None, "description": "",
            "shape_type": shape_type, "flags": {}, "mask": None}  # fmt: skip


def picture(w, h, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def main() -> None:
    cases = {
        "old": (48, 36, [shape("cat", [[4, 4], [30, 6], [20, 30]], "polygon"),
                         shape("dog", [[24, 10], [44, 32]], "rectangle"),
                         shape("cat", [[10, 24], [14, 28]], "circle")]),
        "both": (40, 30, [shape("dog", [[2.5, 3.5], [36.2, 5.1], [30.7, 27.9], [6.1, 25.3]], "polygon"),
                          shape("cat", [[8, 8], [30, 20]], "line")]),
    }  # fmt: skip
    for seed, (stem, (w, h, shapes)) in enumerate(cases.items()):
        tmp = HERE / f"{stem}.png"
        PIL.Image.fromarray(picture(w, h, seed)).save(tmp)
        data = labelme.LabelFile.load_image_file(str(tmp))  # the bytes labelme embeds
        image_path = f"{stem}.json" if stem == "old" else tmp.name
        labelme.LabelFile().save(str(HERE / f"{stem}.json"), shapes, image_path, h, w, image_data=data)
        if stem == "old":
            tmp.unlink()
        lf = labelme.LabelFile(str(HERE / f"{stem}.json"))
        img = labelme.utils.img_data_to_arr(lf.image_data)
        names = ["_background_", *sorted({s["label"] for s in lf.shapes})]
        cls, _ = labelme.utils.shapes_to_label(img.shape, lf.shapes, {n: i for i, n in enumerate(names)})
        PIL.Image.fromarray(cls.astype(np.uint8)).save(HERE / f"{stem}.expected.png")
        PIL.Image.fromarray(img).save(HERE / f"{stem}.image.png")
        print(stem, labelme.__version__, img.shape, np.bincount(cls.ravel()))


if __name__ == "__main__":
    main()
