"""Held-out by default: ``evaluate`` / ``visualize --data-root`` on a format without a val split read
the images the training set aside (recorded in the checkpoint and the ONNX metadata), and say so;
``--split all`` reads everything and says how many trained the model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from conftest import TrainedRun

from segpipe.data.formats import open_dataset
from segpipe.data.heldout import digest
from segpipe.evaluate import evaluate
from segpipe.models import load_checkpoint
from segpipe.options import EvaluateOptions, VisualizeOptions
from segpipe.progress import RecordingReporter


def _eval(model: Path, data: Path, **kw) -> tuple[object, RecordingReporter]:
    rec = RecordingReporter()
    return evaluate(EvaluateOptions(data_root=data, model=model, device="cpu", **kw), rec), rec


@pytest.fixture(scope="module")
def onnx_path(trained_run: TrainedRun, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from typer.testing import CliRunner

    from segpipe.cli.app import app

    out = tmp_path_factory.mktemp("heldout") / "m.onnx"
    res = CliRunner().invoke(
        app, ["export-onnx", "--model", str(trained_run.best), "--model-out", str(out), "-q"]
    )
    assert res.exit_code == 0, res.output
    return out


def test_checkpoint_and_onnx_record_the_split(trained_run: TrainedRun, onnx_path: Path) -> None:
    from segpipe.info import describe_model

    split = load_checkpoint(trained_run.best).info.data_split
    samples = open_dataset(trained_run.data).samples()  # the seed layout: no split of its own
    assert all(s.split is None for s in samples)
    assert split["kind"] == "fraction" and split["seed"] == 0 and split["images"] == len(samples)
    assert split["val"] == round(0.2 * len(samples)) and split["digest"] == digest(samples)
    assert describe_model(onnx_path).info.data_split == split


def test_evaluate_reads_the_held_out_images_by_default(
    trained_run: TrainedRun, onnx_path: Path, tmp_path: Path
) -> None:
    ckpt = torch.load(trained_run.best, map_location="cpu", weights_only=True)
    n_val = ckpt["model_info"]["data_split"]["val"]
    res, rec = _eval(trained_run.best, trained_run.data)
    # the very images training validated on: its best mIoU comes back
    assert res.images == n_val < 12
    assert res.miou == pytest.approx(ckpt["train_state"]["best_metric"], abs=1e-4)
    assert any(i.startswith(f"held out: the {n_val} of 12 images") and "--split all" in i for i in rec.infos)
    assert not rec.warnings and res.to_dict()["images_from"].startswith("held out")

    every, rec = _eval(trained_run.best, trained_run.data, split="all")
    assert every.images == 12
    assert rec.warnings == [
        f"{12 - n_val} of these 12 images trained {trained_run.best}: figures on them flatter it"
    ]

    # the same model as ONNX: the metadata carries the record
    res, rec = _eval(onnx_path, trained_run.data)
    assert res.images == n_val and any(i.startswith("held out:") for i in rec.infos)

    # another data set (an image more): not the one it trained on, all read, said in one line
    other = tmp_path / "other"
    shutil.copytree(trained_run.data, other)
    shutil.copy(other / "images" / "sample_000.png", other / "images" / "zz_extra.png")
    shutil.copy(
        other / "indexes" / "sample_000_color_mask.png", other / "indexes" / "zz_extra_color_mask.png"
    )
    res, rec = _eval(trained_run.best, other)
    assert res.images == 13 and any("is not the data set" in i and "all 13 images" in i for i in rec.infos)


def test_model_without_a_record_says_all_images_are_read(
    tiny_checkpoint: Path, trained_run: TrainedRun
) -> None:
    res, rec = _eval(tiny_checkpoint, trained_run.data)
    assert res.images == 12
    assert len(rec.warnings) == 1 and "does not record which images trained it" in rec.warnings[0]


def test_visualize_data_root_draws_the_held_out_images(trained_run: TrainedRun, tmp_path: Path) -> None:
    from segpipe.visualize import visualize

    n_val = load_checkpoint(trained_run.best).info.data_split["val"]
    rec = RecordingReporter()
    out = tmp_path / "vis"
    res = visualize(
        VisualizeOptions(
            images=trained_run.data,
            model=trained_run.best,
            data_root=trained_run.data,
            output_dir=out,
            device="cpu",
        ),
        rec,
    )
    assert res.images == n_val and any(i.startswith("held out:") for i in rec.infos)
    res = visualize(
        VisualizeOptions(
            images=trained_run.data,
            model=trained_run.best,
            data_root=trained_run.data,
            output_dir=tmp_path / "all",
            device="cpu",
            split="all",
        ),
        RecordingReporter(),
    )
    assert res.images == 12


def _depth(text: str) -> int:
    depth = most = 0
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        most = max(most, depth)
    return most


def test_another_data_set_is_said_in_one_plain_line(tmp_path: Path) -> None:
    """What happens (all images read) and why (not the data set the model trained on, so no
    held-out split), one line without brackets in brackets, starting with the folder (the demo
    says it once by that start)."""
    from segpipe.data.heldout import select_for_model
    from segpipe.data.samples import LabelledSample

    samples = [LabelledSample(f"s{i}", tmp_path / f"s{i}.png", None, None) for i in range(13)]
    record = {"kind": "fraction", "digest": "another", "source": "sample", "images": 120}
    chosen, caution, line = select_for_model(samples, None, tmp_path, record, "best.pth")
    assert chosen == samples and not caution
    assert line == (
        f"{tmp_path} is not the data set best.pth trained on (120 images in sample/), so it has "
        "no held-out split here: reading all 13 images"
    )
    assert _depth(line) == 1
