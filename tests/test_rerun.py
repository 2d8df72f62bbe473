"""Nothing overwritten, nothing forgotten: the stop message names ``--resume``; re-running the
command of an interrupted run says that run exists and how to go on from it; ``segpipe demo`` never
replaces an earlier demo."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import tiny_train_options

from segpipe.progress import RecordingReporter


def _interrupt(opts, reporter=None, after: int = 2) -> str:
    """Run ``opts`` and stop it (as SIGINT would) at its ``after``-th training step."""
    from segpipe.training.guard import TrainingInterrupted
    from segpipe.training.loop import Trainer

    trainer = Trainer(opts, reporter or RecordingReporter())
    original, calls = trainer.train_step, []

    def step_then_stop(*args, **kwargs):
        calls.append(1)
        if len(calls) == after:
            trainer.guard.request()
        return original(*args, **kwargs)

    trainer.train_step = step_then_stop  # type: ignore[method-assign]
    with pytest.raises(TrainingInterrupted) as e:
        trainer.fit()
    return str(e.value)


def test_rerun_after_interrupt_says_how_to_resume(
    index_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from segpipe.training import train

    monkeypatch.chdir(tmp_path)
    opts = tiny_train_options(index_dataset, None, model_name="job", epochs=2)
    stop = _interrupt(opts)
    assert "run the same command with --resume (or: segpipe train --model runs/job/last.pth" in stop
    assert "--output-dir" not in stop.split("(or:")[0]  # --resume alone finds runs/job

    # the same command again, without --resume: a new folder, and one line about the first run
    rec = RecordingReporter()
    again = tiny_train_options(index_dataset, None, model_name="job", epochs=2)
    stop2 = _interrupt(again, rec, after=1)
    notes = [w for w in rec.warnings if "runs/job holds an interrupted run" in w]
    assert len(notes) == 1, rec.warnings
    assert "stopped after epoch 0 of 2" in notes[0] and "this one starts over in runs/job-2" in notes[0]
    assert notes[0].endswith("run the same command with --resume")
    # that second run lives in runs/job-2: --resume alone would find runs/job, so the line says where
    assert "run the same command with --resume --output-dir runs/job-2 (or:" in stop2

    # following the first line's advice goes on from runs/job, which ends where it was asked to
    resumed = train(opts.replace(resume=True), RecordingReporter())
    assert resumed.run_dir.resolve() == (tmp_path / "runs/job").resolve() and resumed.epochs_done == 2
    assert torch.load(tmp_path / "runs/job/last.pth", weights_only=True)["train_state"]["epoch"] == 2
    # a third run: runs/job is finished now (an info line, no warning), runs/job-2 interrupted
    rec = RecordingReporter()
    _interrupt(tiny_train_options(index_dataset, None, model_name="job", epochs=2), rec, after=1)
    assert any(
        "runs/job-2 holds an interrupted run" in w and "--output-dir runs/job-2" in w for w in rec.warnings
    )


def test_demo_twice_keeps_the_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second demo goes to a new folder and says so (the pipeline itself replaced by a stand-in
    that writes what the demo writes: the real double run is the slow test below)."""
    from typer.testing import CliRunner

    from segpipe import demo
    from segpipe.cli.app import app

    ran: list[Path] = []

    def fake_run(output_dir: Path, epochs: int, device: str, reporter: object, show: object) -> None:
        ran.append(output_dir)
        (output_dir / "train").mkdir(parents=True)
        (output_dir / "train" / "best.pth").write_text(str(len(ran)))

    monkeypatch.setattr(demo, "run_demo", fake_run)
    monkeypatch.chdir(tmp_path)
    first = CliRunner().invoke(app, ["demo", "--quiet"])
    assert first.exit_code == 0 and ran == [Path("runs/demo")] and "earlier demo" not in first.output
    second = CliRunner().invoke(app, ["demo", "--quiet"])
    assert second.exit_code == 0 and ran[-1] == Path("runs/demo-2"), second.output
    assert (tmp_path / "runs/demo/train/best.pth").read_text() == "1"  # the first run as it was
    line = " ".join(second.output.split())
    assert "runs/demo holds an earlier demo, kept as it is: this one goes to runs/demo-2" in line
    assert "to replace it instead, delete runs/demo first" in line
    # a third, and a named folder: the next free name each time
    CliRunner().invoke(app, ["demo", "--quiet"])
    assert ran[-1] == Path("runs/demo-3")
    CliRunner().invoke(app, ["demo", "--quiet", "--output-dir", "runs/demo-2"])
    assert ran[-1] == Path("runs/demo-2-2")


@pytest.mark.slow
def test_demo_twice_end_to_end(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from segpipe.cli.app import app

    out = tmp_path / "demo"
    args = ["demo", "--output-dir", str(out), "--epochs", "1", "--quiet", "--device", "cpu"]
    assert CliRunner().invoke(app, args).exit_code == 0
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before
    assert (tmp_path / "demo-2" / "train" / "best.pth").is_file() and "demo-2" in r.output


def test_resumed_run_keeps_the_learning_rates(index_dataset: Path, tmp_path: Path, recwarn) -> None:
    """Stopped in the middle of an epoch (inside the warm-up: last.pth's optimizer holds a warmed
    value) and after an epoch's last step (the resumed epoch runs no batch), then resumed: the
    learning rate of every epoch in metrics.csv is the uninterrupted run's, and torch does not warn
    that the scheduler stepped before the optimizer."""
    import csv

    from segpipe.training import train

    def lrs(run: Path) -> list[float]:
        with (run / "metrics.csv").open() as f:
            return [float(row["lr"]) for row in csv.DictReader(f)]

    recipe = dict(epochs=2, scheduler="cosine", warmup_epochs=1.5)  # 2 steps an epoch: 3 warm-up steps
    whole = train(tiny_train_options(index_dataset, tmp_path / "whole", **recipe), RecordingReporter())
    expected = lrs(whole.run_dir)
    assert len(set(expected)) == 2  # the schedule moves: a shifted epoch would show
    for after in (1, 2):  # stopped at step 1 of epoch 1 (warming up); after its step 2 of 2
        opts = tiny_train_options(index_dataset, tmp_path / f"stopped{after}", **recipe)
        assert f"at epoch 1, step {after} of 2" in _interrupt(opts, after=after)
        recwarn.clear()
        resumed = train(opts.replace(resume=True), RecordingReporter())
        assert lrs(resumed.run_dir) == pytest.approx(expected), after
        assert not [w for w in recwarn if "lr_scheduler.step()" in str(w.message)], after
