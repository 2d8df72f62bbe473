"""Property test: random mutations of a valid metadata JSON, sidecar, palette CSV and config YAML
(keys dropped, wrong types, huge numbers, nested structures, control characters, truncation) give
either success or ONE SegpipeError line, never another exception, and what is read stays bounded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from file_fixtures import GOOD, good_sidecar, write_engine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segpipe.errors import SegpipeError
from segpipe.modelinfo import ModelInfo
from segpipe.options import TrainOptions, load_config
from segpipe.palette import load_palette
from segpipe.tensorrt.sidecar import read_sidecar

SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    database=None,
)

CONTROL = st.sampled_from(["\x1b]0;pwned\x07", "\x1b[2J", "\r", "\x00", "\u202e", "\x9b"])
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | CONTROL
)
VALUES = st.recursive(
    SCALARS,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=3),
    max_leaves=12,
)


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """``base`` with a few keys dropped, replaced by random values or nested, or gaining new keys."""
    data = dict(base)
    for _ in range(draw(st.integers(1, 4))):
        key = draw(st.sampled_from(sorted(base)))
        op = draw(st.sampled_from(["drop", "replace", "nest", "control", "huge", "new"]))
        if op == "drop":
            data.pop(key, None)
        elif op == "replace":
            data[key] = draw(VALUES)
        elif op == "nest":
            data[key] = [data.get(key), {"x": data.get(key)}]
        elif op == "control":
            data[key] = f"{data.get(key)}{draw(CONTROL)}"
        elif op == "huge":
            data[key] = draw(st.sampled_from([10**40, -(10**40), 1e308, [10**9] * 50, "x" * 5000]))
        else:
            data[draw(st.text(max_size=8))] = draw(VALUES)
    return data


def cut(text: str, draw: st.DrawFn) -> str:
    """Sometimes truncate ``text`` at a random point."""
    if draw(st.booleans()):
        return text
    return text[: draw(st.integers(0, max(len(text) - 1, 0)))]


def expect_success_or_one_line(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except SegpipeError as e:
        msg = str(e)
        assert "\n" not in msg and len(msg) < 600, msg
        assert "\x1b" not in msg and "\r" not in msg, msg
        return None


def _plain_metadata() -> dict[str, Any]:
    return {k.removeprefix("segpipe."): json.loads(v) for k, v in GOOD.to_metadata().items()}


@SETTINGS
@given(data=st.data())
def test_mutated_metadata(data: st.DataObject) -> None:
    fields = data.draw(mutated(_plain_metadata()))
    props = {f"segpipe.{k}": json.dumps(v) for k, v in fields.items()}
    if data.draw(st.booleans()) and props:  # damage one value's JSON text
        key = data.draw(st.sampled_from(sorted(props)))
        props[key] = cut(props[key], data.draw)
    info = expect_success_or_one_line(ModelInfo.from_metadata, props, "m.onnx: metadata")
    if info is not None:
        assert len(info.class_names) <= info.num_classes <= 65535
        assert all(0 <= c <= 255 for rgb in info.colors for c in rgb)


@SETTINGS
@given(data=st.data())
def test_mutated_sidecar(tmp_path: Path, data: st.DataObject) -> None:
    side = data.draw(mutated(good_sidecar()))
    raw = cut(json.dumps(side), data.draw)
    engine = write_engine(tmp_path, raw=raw)
    read = expect_success_or_one_line(read_sidecar, engine)
    if read is not None:
        assert len(json.dumps(read)) <= len(raw) + 2000


@SETTINGS
@given(data=st.data())
def test_mutated_palette(tmp_path: Path, data: st.DataObject) -> None:
    rows = [["id", "name", "r", "g", "b"], ["0", "bg", "0", "0", "0"], ["1", "car", "255", "0", "0"]]
    for _ in range(data.draw(st.integers(1, 3))):
        row = data.draw(st.integers(0, len(rows) - 1))
        col = data.draw(st.integers(0, 4))
        value = data.draw(
            st.sampled_from(["99999999999999999999", "-1", "65536", "1e9", "", "x", "300", "1" * 5000])
            | st.text(max_size=10)
            | CONTROL
        )
        rows[row][col] = value
    text = cut("\n".join(",".join(r) for r in rows) + "\n", data.draw)
    csv = tmp_path / "colors.csv"
    csv.write_text(text, encoding="utf-8", errors="surrogatepass")
    palette = expect_success_or_one_line(load_palette, csv)
    if palette is not None:
        assert len(palette) <= 3


@SETTINGS
@given(data=st.data())
def test_mutated_config(tmp_path: Path, data: st.DataObject) -> None:
    base = {"epochs": 2, "size": [64, 32], "lr": 0.01, "class_names": ["a", "b"], "amp": False, "seed": 3}
    fields = data.draw(mutated(base))
    text = yaml.safe_dump(fields, allow_unicode=True)
    if data.draw(st.booleans()):  # an anchor and a few aliases of it
        text = (
            "x0: &a [1, 2, 3]\n"
            + text
            + "".join(f"y{i}: [*a, *a]\n" for i in range(data.draw(st.integers(0, 5))))
        )
    text = cut(text, data.draw)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text, encoding="utf-8", errors="surrogatepass")
    values = expect_success_or_one_line(load_config, cfg, TrainOptions)
    if values is not None:
        kwargs = {k: v for k, v in values.items()}
        expect_success_or_one_line(lambda: TrainOptions(data_root=Path("d"), **kwargs))


@pytest.mark.parametrize("depth", [10, 1000])
def test_nested_values_everywhere_are_one_line(depth: int) -> None:
    nested = "[" * depth + "1" + "]" * depth
    for key in _plain_metadata():
        props = {**GOOD.to_metadata(), f"segpipe.{key}": nested}
        expect_success_or_one_line(ModelInfo.from_metadata, props, "m.onnx: metadata")
