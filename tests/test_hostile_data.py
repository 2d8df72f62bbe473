"""A data folder is input, never a way out (ARCHITECTURE.md convention 15), checked by property tests.

Hypothesis builds data folders of every format with one hostile thing in them (see hostile_data.py:
``..`` and absolute names, NUL, newline, ESC, bytes that are not UTF-8, symlinks out of the root,
FIFOs) and runs what ``segpipe data ROOT --export-masks OUT`` runs, and what train / evaluate /
visualize read (every sample loaded through its reader), in this process under an alarm, and
asserts: nothing under the sandbox outside the data root is opened (an audit hook sees every
``open``), nothing is written outside OUT (the sandbox tree before and after), the run ends
within the time bound, and it ends with one ``SegpipeError`` line or a correct export.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from hostile_data import (
    FILE_KINDS,
    FORMATS,
    NAME_KINDS,
    NAMING,
    SECRET_RGB,
    apply_file_kind,
    build,
    sandbox,
    tree,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segpipe.cli.common import one_line
from segpipe.data import safepaths
from segpipe.data.formats import open_dataset
from segpipe.data.inspect import export_masks, scan_data
from segpipe.errors import SegpipeError
from segpipe.progress import Reporter
from segpipe.schema import printable

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")

_WATCH: list[str] = []  # the folder no open() may touch while a run is watched
_SEEN: list[str] = []


def _audit(event: str, args: tuple) -> None:
    if _WATCH and event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
        try:
            real = os.path.realpath(os.fsdecode(args[0]))
        except (TypeError, ValueError):
            return
        if real.startswith(_WATCH[0]):
            _SEEN.append(real)


sys.addaudithook(_audit)


@contextlib.contextmanager
def watched(outside: Path, seconds: int = 10):
    """Record every open() of a file under ``outside``; a run longer than ``seconds`` is a hang."""

    def alarm(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, alarm)
    _WATCH[:] = [os.path.realpath(outside) + os.sep]
    _SEEN.clear()
    signal.alarm(seconds)
    try:
        yield _SEEN
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        _WATCH.clear()


def run_everything(root: Path, out: Path) -> str:
    """What ``segpipe data ROOT --export-masks OUT`` does, then every sample loaded as train,
    evaluate and visualize load them. Returns "ok" or the error line."""
    try:
        reader = open_dataset(root)
        report = scan_data(reader, ignore_given=False)
        samples = reader.samples()
        export_masks(reader, samples, report.classes, out, Reporter())
        # as train reads them: a reader built with the class count
        reader = open_dataset(root, num_classes=len(report.classes.names), ignore_index=reader.ignore_index)
        for s in reader.samples():
            image, mask = reader.load(s)
            assert image.shape[:2] == mask.shape[:2]
        return "ok"
    except SegpipeError as e:
        return printable(one_line(e))  # the line the CLI prints


def check_run(base: Path, root: Path, outside: Path) -> str:
    out = base / "out"
    before = {p: v for p, v in tree(base).items() if not p.startswith(os.fsencode(out))}
    with watched(outside) as seen:
        result = run_everything(root, out)
    assert not seen, f"opened outside the data root: {seen}"
    after = {p: v for p, v in tree(base).items() if not p.startswith(os.fsencode(out))}
    assert after == before, "something was written outside the output folder"
    if result != "ok":
        assert "\n" not in result, f"not one line: {result!r}"
        assert not out.exists()
        return result
    for p in tree(out):
        assert not os.path.islink(p)
        name = os.path.basename(p)
        assert b"\n" not in name and b"\x1b" not in name and b"\x00" not in name
        name.decode("utf-8")  # every exported name is UTF-8
        if p.endswith((b".png", b".jpg")) and b"/images/" in p:
            img = cv2.imdecode(np.fromfile(os.fsdecode(p), np.uint8), cv2.IMREAD_COLOR)
            assert not (img == np.array(SECRET_RGB[::-1], np.uint8)).all(axis=2).any(), (
                "the secret was exported"
            )
    return result


_CASES = st.one_of(
    st.tuples(st.sampled_from(NAMING), st.just("name"), st.sampled_from(sorted(NAME_KINDS))),
    st.tuples(st.sampled_from(FORMATS), st.just("file"), st.sampled_from(FILE_KINDS)),
)


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=_CASES)
def test_hostile_folder_never_escapes_hangs_or_crashes(case: tuple[str, str, str]) -> None:
    fmt, what, kind = case
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        base, root, outside = sandbox(Path(tmp))
        if what == "name":
            build(fmt, root, NAME_KINDS[kind])
        else:
            files = build(fmt, root)
            apply_file_kind(kind, files, outside)
        result = check_run(base, root, outside)
        if what == "file" and kind in ("symlink_out", "fifo_image"):  # a FIFO list may be passed over
            assert result != "ok", f"{fmt} {kind}: exported"
        if what == "name" and kind in ("dotdot", "dotdot_deep", "absolute"):
            assert result != "ok"
            if kind == "absolute":  # the file exists: refused for where it is
                assert "outside the data root" in result, result


@pytest.mark.parametrize("fmt", FORMATS)
def test_plain_folder_of_every_format_exports(fmt: str, tmp_path: Path) -> None:
    """The builders make correct folders (so the hostile cases test the hostile thing only)."""
    base, root, outside = sandbox(tmp_path)
    build(fmt, root)
    assert check_run(base, root, outside) == "ok"
    assert (base / "out" / "colors.csv").is_file()
    assert list((base / "out" / "indexes").rglob("*_color_mask.png"))


@pytest.mark.parametrize(
    ("fmt", "kind"),
    [(f, k) for f in ("seed", "yolo", "cityscapes", "labelme") for k in ("name_newline", "name_non_utf8")],
)
def test_strange_names_export_under_a_clean_name(fmt: str, kind: str, tmp_path: Path) -> None:
    base, root, outside = sandbox(tmp_path)
    apply_file_kind(kind, build(fmt, root), outside)
    assert check_run(base, root, outside) == "ok"
    names = [os.path.basename(p) for p in tree(base / "out" / "images")]
    assert any(n.startswith(b"z") and n.endswith(b".png") for n in names), names


def test_outside_root_is_an_opt_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SEGPIPE_DATA_OUTSIDE_ROOT=1 (typed by the user) lets a label file name an image elsewhere."""
    base, root, outside = sandbox(tmp_path)
    build("coco", root, "{outside}/secret")
    reader = open_dataset(root)
    with pytest.raises(SegpipeError, match="outside the data root"):
        reader.samples()
    monkeypatch.setenv(safepaths.OUTSIDE_ENV, "1")
    assert len(open_dataset(root).samples()) == 2


def test_safe_relname_and_output_path(tmp_path: Path) -> None:
    assert safepaths.safe_relname("train/a") == "train/a"
    assert safepaths.safe_relname("../../x/secret") == "x/secret"
    assert safepaths.safe_relname("/etc/passwd") == "etc/passwd"
    assert safepaths.safe_relname("a\nb\x1bc") == "a_b_c"
    assert safepaths.safe_relname(os.fsdecode(b"a\xffb")) == "a_b"
    assert safepaths.safe_relname("..") == "_"
    assert safepaths.output_path(tmp_path, "../x", ".png") == tmp_path / "x.png"
    (tmp_path / "link").symlink_to(tmp_path.parent)
    with pytest.raises(SegpipeError, match="leave the output folder"):
        safepaths.output_path(tmp_path, "link/x")


def test_shown_is_one_printable_line() -> None:
    text = safepaths.shown(os.fsdecode(b"a\nb\x1b[2J\xff"))
    assert "\n" not in text and "\x1b" not in text
    text.encode("utf-8")


@pytest.mark.parametrize(
    ("fmt", "kind", "what"), [("coco", "fifo_image", "image"), ("ultralytics", "fifo_label", "list")]
)
def test_a_fifo_is_said_to_be_no_regular_file(fmt: str, kind: str, what: str, tmp_path: Path) -> None:
    """A COCO image / an Ultralytics split list that is a FIFO exists: the one line says what it is
    (it said "missing" / "does not exist"), names it, and nothing blocks on opening it."""
    base, root, outside = sandbox(tmp_path)
    files = build(fmt, root)
    apply_file_kind(kind, files, outside)
    with pytest.raises(SegpipeError) as exc:
        open_dataset(root, fmt).samples()
    msg = str(exc.value)
    assert "FIFO (named pipe), not a regular file" in msg and os.fspath(files[what]) in msg, msg
    assert "missing" not in msg and "does not exist" not in msg and "\n" not in msg
