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
