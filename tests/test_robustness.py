"""Crash safety and safe loading of ``segpipe train``.

* a SIGINT in the middle of an epoch: the step finishes, ``last.pth`` is written, one line says how
  to resume, exit code 130; resuming (with loader workers this time) ends with the same weights
  as a run that was never interrupted;
* a second signal during a (deliberately slow) save ends the process at once and ``last.pth`` is
  the previous complete checkpoint, never a truncated one; ``--resume`` then goes on from it;
* an exact resume after 2 of 4 epochs, and after a stop in the middle of an epoch;
* a NaN loss stops the run with one line naming epoch and step and keeps the last good
  checkpoint; ``--skip-nonfinite`` skips the batch instead;
* a crafted pickle that creates a file when unpickled: refused with one line, no file appears,
  unless ``--trust-checkpoint``.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import ENCODER
from typer.testing import CliRunner

from segpipe.cli.app import app
from segpipe.data.synthetic import make_dataset
from segpipe.errors import CheckpointError
from segpipe.models import load_checkpoint
from segpipe.options import TrainOptions
from segpipe.progress import RecordingReporter
from segpipe.training import train
from segpipe.training.guard import NonFiniteLoss, TrainingInterrupted
from segpipe.training.loop import Trainer

TESTS = Path(__file__).parent
runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    """One-line errors as users see them, even after a test ran ``segpipe --debug``."""
    from segpipe.cli import common

    monkeypatch.setitem(common._state, "debug", False)


FAST = [
    "--num-classes",
    "3",
    "--encoder",
    ENCODER,
    "--encoder-weights",
    "none",
    "--size",
    "64",
    "64",
    "--device",
    "cpu",
]


def _env(**extra: str) -> dict[str, str]:
    """The subprocess's environment: tests/ importable, and as many CPU threads as this process uses
    (runs compared for exact equality must reduce in the same order: Adam turns the last-bit
    differences of near-zero gradients into whole learning-rate steps)."""
    path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH", "")) if p)
    threads = str(torch.get_num_threads())
    return {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": threads, **extra}


def _same_weights(a: Path, b: Path) -> None:
    wa = torch.load(a, weights_only=True)["state_dict"]
    wb = torch.load(b, weights_only=True)["state_dict"]
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.allclose(wa[k].float(), wb[k].float(), atol=1e-5), k


def _wait_for(predicate, proc: subprocess.Popen, timeout: float = 180) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"run ended early ({proc.returncode}): {proc.communicate()[1][-3000:]}")
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError("timed out waiting for the run")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """8 training images (4 steps of 2), 2 validation images."""
    root = tmp_path_factory.mktemp("robust")
    return (
        make_dataset(root / "train", count=8, size=(64, 64), num_classes=3, seed=21),
        make_dataset(root / "val", count=2, size=(64, 64), num_classes=3, seed=22),
    )


def _opts(split: tuple[Path, Path], out: Path, **kw) -> TrainOptions:
    base = dict(
        data_root=split[0],
        val_root=split[1],
        num_classes=3,
        encoder=ENCODER,
        encoder_weights="none",
        size=(64, 64),
        batch_size=2,
        epochs=3,
        workers=0,
        use_mixup=True,
        augment="light",
        seed=5,
        device="cpu",
        output_dir=out,
    )
    return TrainOptions(**{**base, **kw})


# ---- signals --------------------------------------------------------------------------------------
@pytest.mark.slow  # 21 s; SIGINT/SIGTERM to the process group with loader workers stays in the default run (test_dependable)
def test_sigint_mid_epoch_saves_last_and_the_resumed_run_ends_the_same(split, tmp_path: Path) -> None:
    train_dir, val_dir = split
    out, log = tmp_path / "run", tmp_path / "seen.txt"
    cmd = [
        sys.executable,
        "-m",
        "segpipe",
        "train",
        "--data-root",
        str(train_dir),
        "--val-root",
        str(val_dir),
        *FAST,
        "--batch-size",
        "2",
        "--epochs",
        "3",
        "--workers",
        "0",
        "--use-mixup",
        "--seed",
        "5",
        "--dataset",
        "train_helpers:LoggedDataset",
        "--output-dir",
        str(out),
    ]
    proc = subprocess.Popen(
        cmd,
        env=_env(SEGPIPE_TEST_LOG=str(log), SEGPIPE_TEST_DELAY="0.15"),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def train_reads() -> int:
        return sum(" train " in ln for ln in log.read_text().splitlines()) if log.exists() else 0

    # train's --dataset check reads pair 0 once up front, then epoch 1 reads 8: epoch 2, step 2 under way
    _wait_for(lambda: train_reads() >= 1 + 8 + 3, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    lines = [ln for ln in err.splitlines() if ln.startswith("stopped:")]
    assert len(lines) == 1 and "interrupted by SIGINT at epoch 2, step" in lines[0], err[-3000:]
    assert "Traceback" not in err
    last = out / "last.pth"
    assert "run the same command with --resume (or: " in lines[0]  # --output-dir named the folder
    assert f"(or: segpipe train --model {last} --config {out / 'options.yaml'}" in lines[0]
    state = torch.load(last, weights_only=True)["train_state"]
    assert state["epoch"] == 1 and state["step"] in (2, 3), state["step"]  # one epoch done, part of the next
    # resume with the command the line gives, with loader workers this time (persistent)
    resume = shlex.split(lines[0].split("(or: ", 1)[1].removesuffix(")"))[2:] + ["--workers", "2"]
    r = runner.invoke(app, ["train", *resume])
    assert r.exit_code == 0, r.output
    assert "going on at epoch 2 of 3, after the" in r.output
    straight = train(_opts(split, tmp_path / "straight", dataset="train_helpers:LoggedDataset"))
    _same_weights(straight.last_path, last)
    assert [row["epoch"] for row in torch.load(last, weights_only=True)["train_state"]["history"]] == [
        1,
        2,
        3,
    ]


SLOW_SAVE = """
import pathlib, sys, time, torch
marker, real_save, saves = pathlib.Path(sys.argv[1]), torch.save, []
def slow_save(obj, f, *args, **kwargs):
    if pathlib.Path(str(f)).name.startswith(".last.pth."):
        saves.append(f)
        if len(saves) >= 2:  # epoch 2's last.pth: write part of it, then stall
            with open(f, "wb") as fh:
                fh.write(b"PK partial checkpoint")
            marker.write_text("saving")
            time.sleep(120)
    return real_save(obj, f, *args, **kwargs)
torch.save = slow_save
sys.argv = ["segpipe"] + sys.argv[2:]
from segpipe.cli.app import main
main()
"""


def test_second_signal_exits_at_once_and_last_pth_is_never_truncated(split, tmp_path: Path) -> None:
    out, marker = tmp_path / "run", tmp_path / "saving"
    cmd = [
        sys.executable,
        "-c",
        SLOW_SAVE,
        str(marker),
        "train",
        "--data-root",
        str(split[0]),
        "--val-root",
        str(split[1]),
        *FAST,
        "--batch-size",
        "4",
        "--epochs",
        "3",
        "--workers",
        "0",
        "--output-dir",
        str(out),
    ]
    proc = subprocess.Popen(
        cmd, env=_env(), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _wait_for(marker.exists, proc)
    proc.send_signal(signal.SIGINT)  # first: finish what you are doing (the save)...
    time.sleep(1.0)
    assert proc.poll() is None, "the first signal must not end the run"
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)  # ...second: exit at once, in the middle of writing
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGINT and time.monotonic() - t0 < 10
    leftovers = list(out.glob(".last.pth.*.tmp"))
    assert not leftovers  # killed mid-write, the temporary file removed on the way out...
    ckpt = load_checkpoint(out / "last.pth")  # ...and last.pth is the complete epoch-1 checkpoint
    assert ckpt.train_state["epoch"] == 1 and ckpt.train_state["step"] == 0
    # --resume finds it; the next run clears the leftover
    r = runner.invoke(
        app,
        [
            "train",
            "--data-root",
            split[0],
            "--val-root",
            split[1],
            *FAST,
            "--batch-size",
            "4",
            "--epochs",
            "2",
            "--workers",
            "0",
            "--output-dir",
            out,
            "--resume",
        ],
    )
    assert r.exit_code == 0, r.output
    assert f"--resume: resuming from {out / 'last.pth'}" in r.output
    assert not list(out.glob(".*.tmp"))
    assert load_checkpoint(out / "last.pth").train_state["epoch"] == 2


# ---- exact resume ---------------------------------------------------------------------------------
def test_two_epochs_then_two_more_equal_four_straight(split, tmp_path: Path) -> None:
    straight = train(_opts(split, tmp_path / "straight", epochs=4))
    first = Trainer(_opts(split, tmp_path / "resumed", epochs=4))
    original = first.train_epoch

    def stop_after_second(epoch: int) -> float:
        loss = original(epoch)
        if epoch == 1:
            first.guard.request(signal.SIGTERM)  # as if SIGTERM arrived during epoch 2
        return loss

    first.train_epoch = stop_after_second  # type: ignore[method-assign]
    with pytest.raises(TrainingInterrupted) as stop:
        first.fit()
    assert stop.value.exit_code == 143 and "after epoch 2" in str(stop.value)
    last = tmp_path / "resumed" / "last.pth"
    assert torch.load(last, weights_only=True)["train_state"]["epoch"] == 2
    resumed = train(_opts(split, tmp_path / "ignored", epochs=4, model=last, output_dir=None))
    assert resumed.run_dir == tmp_path / "resumed" and [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]
    _same_weights(straight.last_path, resumed.last_path)


def test_stop_in_the_middle_of_an_epoch_resumes_exactly(split, tmp_path: Path) -> None:
    straight = train(_opts(split, tmp_path / "straight", epochs=2))
    first = Trainer(_opts(split, tmp_path / "resumed", epochs=2))
    original, calls = first.train_step, []

    def step_then_stop(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:  # epoch 2, step 1
            first.guard.request()
        return original(*args, **kwargs)

    first.train_step = step_then_stop  # type: ignore[method-assign]
    with pytest.raises(TrainingInterrupted, match="at epoch 2, step 1 of 4"):
        first.fit()
    last = tmp_path / "resumed" / "last.pth"
    state = torch.load(last, weights_only=True)["train_state"]
    assert (state["epoch"], state["step"]) == (1, 1)
    resumed = train(_opts(split, tmp_path / "resumed", epochs=2, model=last))
    _same_weights(straight.last_path, resumed.last_path)
    assert resumed.history[-1]["train_loss"] == pytest.approx(straight.history[-1]["train_loss"], rel=1e-5)


# ---- non-finite loss ------------------------------------------------------------------------------
def _nan_at(trainer: Trainer, call: int) -> None:
    """Make the ``call``-th training loss NaN (validation losses untouched)."""
    criterion, calls = trainer.criterion, []

    def patched(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = criterion(logits, target)
        if torch.is_grad_enabled():
            calls.append(1)
            if len(calls) == call:
                return loss * float("nan")
        return loss

    trainer.criterion = patched  # type: ignore[assignment]


def test_nan_loss_stops_with_one_line_and_keeps_the_last_good_checkpoint(split, tmp_path: Path) -> None:
    out = tmp_path / "run"
    trainer = Trainer(_opts(split, out, epochs=2, use_mixup=False))
    _nan_at(trainer, 4 + 2)  # epoch 2, step 2
    with pytest.raises(NonFiniteLoss) as err:
        trainer.fit()
    message = str(err.value)
    assert "\n" not in message and "NaN or infinite at epoch 2, step 2 of 4" in message
    assert f"kept the last good checkpoint {out / 'last.pth'} (epoch 1)" in message
    assert "lower --lr than 0.001" in message and "--skip-nonfinite" in message
    ckpt = load_checkpoint(out / "last.pth")
    assert ckpt.train_state["epoch"] == 1 and all(torch.isfinite(v).all() for v in ckpt.state_dict.values())


def test_diverging_run_stops_on_the_command_line_with_one_line(split, tmp_path: Path) -> None:
    r = runner.invoke(
        app,
        [
            "train",
            "--data-root",
            split[0],
            "--val-root",
            split[1],
            *FAST,
            "--batch-size",
            "4",
            "--epochs",
            "2",
            "--workers",
            "0",
            "--lr",
            "1e30",
            "--output-dir",
            tmp_path / "run",
        ],
    )
    assert r.exit_code == 1
    errors = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "at epoch 1, step 2 of 2" in errors[0], r.output
    assert "no checkpoint had been written yet" in errors[0] and not (tmp_path / "run" / "last.pth").exists()


def test_skip_nonfinite_skips_the_batch(split, tmp_path: Path) -> None:
    rep = RecordingReporter()
    trainer = Trainer(_opts(split, tmp_path / "run", epochs=2, use_mixup=False, skip_nonfinite=True), rep)
    _nan_at(trainer, 4 + 2)
    result = trainer.fit()
    assert result.epochs_done == 2
    assert any("epoch 2: skipped 1 batch(es) with a non-finite loss" in w for w in rep.warnings), rep.warnings
    assert all(torch.isfinite(torch.tensor(row["train_loss"])) for row in result.history)
    weights = load_checkpoint(result.last_path).state_dict
    assert all(torch.isfinite(v).all() for v in weights.values())


# ---- safe loading ---------------------------------------------------------------------------------
class _CreatesFile:
    """Unpickling this opens (creates) ``path``: the stand-in for arbitrary code in a pickle."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture()
def crafted(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "pwned.txt"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "model": _CreatesFile(marker)}, path)
    assert not marker.exists()
    return path, marker


@pytest.mark.parametrize("command", ["train", "info", "export-onnx"])
def test_crafted_pickle_is_refused_and_runs_nothing(crafted, split, tmp_path: Path, command: str) -> None:
    path, marker = crafted
    args = {
        "train": ["train", "--data-root", split[0], *FAST, "--model", path, "--output-dir", tmp_path / "run"],
        "info": ["info", path],
        "export-onnx": ["export-onnx", "--model", path],
    }[command]
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exit_code == 1, r.output
    errors = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and str(path) in errors[0] and "--trust-checkpoint" in errors[0], r.output
    assert not marker.exists() and not (tmp_path / "run").exists()


def test_trust_checkpoint_unpickles(crafted, split, tmp_path: Path) -> None:
    path, marker = crafted
    r = runner.invoke(
        app,
        [
            str(a)
            for a in [
                "train",
                "--data-root",
                split[0],
                *FAST,
                "--model",
                path,
                "--trust-checkpoint",
                "--output-dir",
                tmp_path / "run",
            ]
        ],
    )
    assert marker.exists()  # the flag really unpickles (and so ran the pickle's code)
    assert r.exit_code == 1 and "weights do not fit" in r.output  # a bare state_dict of the wrong model
    with pytest.raises(CheckpointError, match="--trust-checkpoint"):
        load_checkpoint(path)
