"""`segpipe train`: the run folder, learning, resuming, flags and every bad-input case."""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from conftest import ENCODER, TRAIN_FLAGS, TrainedRun, tiny_train_options
from typer.testing import CliRunner

from segpipe.cli.app import app
from segpipe.data.synthetic import make_dataset
from segpipe.progress import RecordingReporter
from segpipe.training import train
from segpipe.training.loop import Trainer
from segpipe.training.metrics import IoUMeter

runner = CliRunner()
FAST = TRAIN_FLAGS  # --encoder ENCODER, no weights, 64x64, batch 4, no workers, CPU


def run_cli(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_cli_train_writes_complete_run_folder(trained_run: TrainedRun) -> None:
    # the shared run was trained with the original tool's spellings (--data_root, --backend...)
    out, output = trained_run.dir, trained_run.output
    assert "best mIoU" in output and "epoch 2/2" in output
    for name in ("best.pth", "last.pth", "metrics.csv", "curves.png", "options.yaml", "val_samples.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    for png in ("curves.png", "val_samples.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert cv2.imread(str(out / png)).shape[0] > 100
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert {"time_s", "train_loss", "val_loss", "miou", "iou_bg", "iou_a", "iou_b", "lr"} <= set(rows[0])
    assert 0.0 <= float(rows[-1]["miou"]) <= 1.0
    opts = yaml.safe_load((out / "options.yaml").read_text())
    assert opts["epochs"] == 2 and opts["encoder"] == ENCODER and opts["size"] == [64, 64]
    ckpt = torch.load(out / "last.pth", weights_only=True)  # the checkpoint contract
    info = ckpt["model_info"]
    assert info["class_names"] == ["bg", "a", "b"] and info["input_size"] == [64, 64]
    assert info["encoder"] == ENCODER and len(info["colors"]) == 3 and info["output_stride"] == 32
    assert ckpt["train_state"]["epoch"] == 2 and "optimizer" in ckpt["train_state"]
    assert not list(out.glob(".*.tmp"))


@pytest.mark.slow
def test_training_learns_well_above_majority_class(tmp_path: Path) -> None:
    """The end-to-end learning test (slow: ``pytest -m slow``, run by .ci/run)."""
    data = make_dataset(tmp_path / "easy", count=30, size=(64, 64), num_classes=3, seed=5)
    opts = tiny_train_options(data, tmp_path / "run", epochs=10, lr=3e-3, augment="none", device="auto")
    trainer = Trainer(opts)
    # the majority-class baseline on the same validation images
    meter = IoUMeter(3)
    for _, mask in trainer.val_set:
        meter.update(torch.zeros_like(mask).long()[None], mask.long()[None])
    baseline = meter.compute().miou
    result = trainer.fit()
    assert result.best_miou > baseline + 0.25, (result.best_miou, baseline)


def test_resume_restores_optimizer_and_is_exact(index_dataset: Path, tmp_path: Path) -> None:
    # on CPU: exact on any machine (on CUDA, exactness needs --deterministic; cudnn.benchmark picks kernels per run)
    common = dict(data_root=index_dataset, epochs=2, use_mixup=True, seed=3)
    straight = train(tiny_train_options(output_dir=tmp_path / "straight", **common))

    # the same run, interrupted after its first epoch
    class Stop(Exception):
        pass

    interrupted = Trainer(tiny_train_options(output_dir=tmp_path / "resumed", **common))
    original = interrupted.train_epoch
    calls = []

    def train_epoch_then_stop(epoch: int) -> float:
        if calls:
            raise Stop
        calls.append(epoch)
        return original(epoch)

    interrupted.train_epoch = train_epoch_then_stop  # type: ignore[method-assign]
    with pytest.raises(Stop):
        interrupted.fit()
    last = tmp_path / "resumed" / "last.pth"
    saved = torch.load(last, weights_only=True)
    assert saved["train_state"]["epoch"] == 1

    resumed = Trainer(tiny_train_options(output_dir=None, model=last, **common))
    assert resumed.start_epoch == 1 and resumed.run_dir == tmp_path / "resumed"
    state = resumed.optimizer.state_dict()["state"]
    for k, v in saved["train_state"]["optimizer"]["state"].items():
        assert torch.equal(state[k]["exp_avg"], v["exp_avg"])
    result = resumed.fit()
    assert [r["epoch"] for r in result.history] == [1, 2]
    a = torch.load(straight.last_path, weights_only=True)["state_dict"]
    b = torch.load(result.last_path, weights_only=True)["state_dict"]
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-5), k


def test_missing_start_checkpoint_warns_and_trains(index_dataset: Path, tmp_path: Path) -> None:
    r = run_cli(
        "train",
        "--data-root",
        index_dataset,
        "--num-classes",
        3,
        "--epochs",
        1,
        "--model",
        tmp_path / "nope.pth",
        "--output-dir",
        tmp_path / "run",
        *FAST,
    )
    assert r.exit_code == 0, r.output
    assert "nope.pth does not exist; training from scratch" in r.output
    assert (tmp_path / "run" / "best.pth").exists()


def test_config_file_and_flags_win(index_dataset: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"data_root: {index_dataset}\nnum_classes: 3\nencoder: resnet18\nepochs: 5\nloss: ce+dice\n"
    )
    r = run_cli("train", "--config", cfg, "--epochs", 1, "--output-dir", tmp_path / "run", *FAST)
    assert r.exit_code == 0, r.output
    opts = yaml.safe_load((tmp_path / "run" / "options.yaml").read_text())
    assert opts["epochs"] == 1 and opts["loss"] == "ce+dice" and opts["encoder"] == ENCODER  # the flag won


@pytest.mark.parametrize(
    "mode,loss", [("binary", "bce+dice"), ("multilabel", "focal+lovasz"), ("seg", "dice+focal+lovasz")]
)
def test_modes_and_losses_train(tmp_path: Path, mode: str, loss: str) -> None:
    classes = 2 if mode == "binary" else 3
    data = make_dataset(tmp_path / "d", count=6, size=(64, 64), num_classes=classes, seed=2)
    rep = RecordingReporter()
    result = train(
        tiny_train_options(data, tmp_path / "run", num_classes=classes, mode=mode, loss=loss, batch_size=2),
        rep,
    )
    assert np.isfinite(result.history[0]["train_loss"])
    assert len(result.history[0]["iou"]) == classes


def test_custom_dataset_class(tmp_path: Path, index_dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mydata.py").write_text(
        "import torch\n"
        "class Squares(torch.utils.data.Dataset):\n"
        "    def __init__(self, root, split, transform):\n"
        "        self.n = 8 if split == 'train' else 2\n"
        "    def __len__(self):\n"
        "        return self.n\n"
        "    def __getitem__(self, i):\n"
        "        m = torch.zeros(64, 64, dtype=torch.uint8); m[16:48, 16:48] = 1\n"
        "        return (m[..., None].repeat(1, 1, 3) * 200), m\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    result = train(tiny_train_options(tmp_path, tmp_path / "run", dataset="mydata:Squares", num_classes=2))
    assert result.epochs_done == 1 and len(result.history[0]["iou"]) == 2
    sys.modules.pop("mydata", None)


def _break(kind: str, root: Path, tmp: Path) -> list[str]:
    """Make one kind of bad input; returns the extra CLI args."""
    if kind == "missing root":
        shutil.rmtree(root)
    elif kind == "no images dir":
        shutil.rmtree(root / "images")
    elif kind == "no masks dir":
        shutil.rmtree(root / "indexes")
    elif kind == "orphan images":
        (root / "indexes" / "sample_003_color_mask.png").unlink()
    elif kind == "corrupt image":
        (root / "images" / "sample_004.png").write_bytes(b"\x89PNG broken")
    elif kind == "corrupt mask":
        (root / "indexes" / "sample_004_color_mask.png").write_bytes(b"broken")
    elif kind == "size mismatch":
        cv2.imwrite(str(root / "indexes" / "sample_002_color_mask.png"), np.zeros((32, 64), np.uint8))
    elif kind == "value too large":
        m = np.zeros((64, 64), np.uint8)
        m[3, 3] = 7
        cv2.imwrite(str(root / "indexes" / "sample_001_color_mask.png"), m)
    elif kind == "unknown colour":
        cv2.imwrite(
            str(root / "indexes" / "sample_001_color_mask.png"), np.full((64, 64, 3), (9, 99, 199), np.uint8)
        )
    elif kind == "empty dataset":
        for p in (root / "images").iterdir():
            p.unlink()
    elif kind == "bad size":
        return ["--size", "100", "64"]
    elif kind == "unknown encoder":
        return ["--encoder", "resnet181"]
    elif kind == "unknown arch":
        return ["--arch", "Unett"]
    elif kind == "bad config":
        (tmp / "c.yaml").write_text("epochs: 1\nlr: [0.1\n")
        return ["--config", str(tmp / "c.yaml")]
    elif kind == "bad class map":
        (tmp / "map.txt").write_text("1,0\n2 -> x\n")
        return ["--class-map", str(tmp / "map.txt")]
    elif kind == "num classes vs checkpoint":
        from segpipe.modelinfo import ModelInfo
        from segpipe.models import create_model, save_checkpoint

        info = ModelInfo(arch="Unet", encoder=ENCODER, num_classes=5, input_size=(64, 64))
        save_checkpoint(tmp / "five.pth", create_model(info), info, {"epoch": 1, "optimizer": {}})
        return ["--model", str(tmp / "five.pth")]
    return []


BAD = {
    "missing root": "does not exist",
    "no images dir": "images is missing",
    "no masks dir": "indexes is missing",
    "orphan images": "have no mask",
    "corrupt image": "cannot read image",
    "corrupt mask": "cannot read mask",
    "size mismatch": "mask is 64x32 but image",
    "value too large": "mask value 7 is >= --num-classes 3",
    "unknown colour": "colour (199, 99, 9)",
    "empty dataset": "holds no images",
    "bad size": "try 96 or 128",
    "unknown encoder": "close matches: resnet18",
    "unknown arch": "close matches: Unet",
    "bad config": "c.yaml line",
    "bad class map": "map.txt line 2",
    "num classes vs checkpoint": "--num-classes 3 contradicts",
}


@pytest.mark.parametrize("kind", list(BAD))
def test_bad_input_is_one_line_exit_1_nothing_written(kind: str, index_dataset: Path, tmp_path: Path) -> None:
    root = tmp_path / "ds"
    shutil.copytree(index_dataset, root)
    extra = _break(kind, root, tmp_path)
    out = tmp_path / "run"
    args = [
        "train",
        "--data-root",
        root,
        "--num-classes",
        3,
        "--epochs",
        1,
        "--output-dir",
        out,
        *FAST,
        *extra,
    ]
    r = run_cli(*args)
    assert r.exit_code == 1, r.output
    errors = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and BAD[kind] in errors[0], r.output
    assert "Traceback" not in r.output
    assert not out.exists()


def test_debug_shows_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from segpipe.cli import common

    monkeypatch.setitem(common._state, "debug", False)  # --debug sticks for the process: undo it afterwards
    r = run_cli("--debug", "train", "--data-root", tmp_path / "nope", "--num-classes", 2)
    assert r.exit_code != 0 and r.exception is not None
    assert "does not exist" in str(r.exception)


def test_curves_mark_the_best_epoch_and_survive_runs_without_validation(tmp_path):
    import math

    import matplotlib.image

    from segpipe.training.runlog import plot_curves

    rows = [
        {"epoch": e, "train_loss": 1 / e, "val_loss": 2 / e, "miou": m}
        for e, m in [(1, 0.2), (2, 0.6), (3, 0.5)]
    ]
    assert matplotlib.image.imread(plot_curves(rows, tmp_path / "c.png")).shape[2] in (3, 4)
    no_val = [{"epoch": e, "train_loss": 1 / e, "miou": math.nan} for e in (1, 2)]
    assert plot_curves(no_val, tmp_path / "n.png").stat().st_size > 0


#: (field, flag, a value refused, why, the value at the edge that is accepted): the declared ranges
#: of TrainOptions (options/train_checks.py), hand-written checks before.
RANGES = [
    ("epochs", "--epochs", "0", "must be at least 1", 1),
    ("batch_size", "--batch", "0", "must be at least 1", 1),
    ("lr", "--lr", "0", "must be above 0", 1e-9),
    ("weight_decay", "--weight-decay", "-0.5", "must be at least 0", 0.0),
    ("val_fraction", "--val-fraction", "1", "must be in [0, 1)", 0.0),
    ("workers", "--workers", "-1", "must be at least 0", 0),
    ("mixup_alpha", "--mixup-alpha", "0", "must be above 0", 1e-6),
    ("patience", "--patience", "-1", "must be at least 0", 0),
    ("devices", "--devices", "0", "must be at least 1", 1),
    ("max_restarts", "--max-restarts", "-1", "must be at least 0", 0),
    ("log_every", "--log-every", "-1", "must be at least 0", 0),
    ("class_weight_cap", "--class-weight-cap", "0.5", "must be at least 1", 1.0),
    ("ema_decay", "--ema-decay", "1", "must be in (0, 1)", 0.999999),
    ("ema_decay", "--ema-decay", "0", "must be in (0, 1)", 1e-6),
    ("warmup_epochs", "--warmup-epochs", "-1", "must be at least 0", 0.0),
]


@pytest.mark.parametrize(
    ("field", "flag", "bad", "why", "edge"), RANGES, ids=[f"{r[0]}={r[2]}" for r in RANGES]
)
def test_a_value_out_of_its_declared_range(
    index_dataset: Path, tmp_path: Path, field, flag, bad, why, edge
) -> None:
    """Typed: one line naming the flag and the value. From --config: one line naming the file, the
    line, the key and the value as written there (``--batch`` from a file named neither before)."""
    r = run_cli("train", "--data-root", index_dataset, *FAST, flag, bad)  # the last one typed counts
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert r.exit_code == 1 and len(lines) == 1, r.output
    assert lines[0].startswith(f"error: {flag} {bad}") and lines[0].endswith(why), lines
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"seed: 3\n{field}: {bad}\n")
    r = run_cli("train", "--data-root", index_dataset, "--config", cfg)
    assert r.exit_code == 1 and r.output.strip() == f"error: {cfg} line 2: {field}: {bad}: {why}", r.output
    assert getattr(tiny_train_options(index_dataset, tmp_path, **{field: edge}), field) == edge
