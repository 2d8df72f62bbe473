"""Where ``train`` starts and writes: the checkpoint it resumes (``--resume``, an elastic restart's
own ``last.pth``), the run folder (claimed and locked, never written over by accident).

All checks happen here, before anything is written, so bad input never leaves half a run behind.
What the run reads (classes, readers, datasets) is built by :func:`segpipe.data.build.build_data`.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from segpipe.errors import ConfigError
from segpipe.models import Checkpoint
from segpipe.options import TrainOptions
from segpipe.training.distributed import restart_count
from segpipe.training.runlock import RunLock, in_use, lock_run_dir


def resumable(ckpt: Checkpoint | None) -> bool:
    """``ckpt`` can be resumed: it holds a run's optimizer state (``last.pth``; ``best.pth`` is for
    deployment and holds the weights and their description only)."""
    return bool(ckpt is not None and ckpt.train_state and "optimizer" in ckpt.train_state)


def holds_run(folder: Path) -> bool:
    """``folder`` holds the checkpoints of an earlier run."""
    return (folder / "last.pth").exists() or (folder / "best.pth").exists()


def resolve_run_dir(opts: TrainOptions, resume_from: Path | None) -> Path:
    """``--output-dir`` as given; else the folder of the checkpoint being resumed; else
    ``runs/<model_name>``, or ``runs/<model_name>-2``, ``-3``... when that already holds a run or
    another run is using it."""
    if opts.output_dir is not None:
        return Path(opts.output_dir)
    if resume_from is not None:
        return resume_from.parent
    base = Path("runs") / opts.model_name
    candidate, i = base, 2
    while holds_run(candidate) or in_use(candidate):
        candidate = base.with_name(f"{opts.model_name}-{i}")
        i += 1
    return candidate


def resume_flags(opts: TrainOptions, run: Path) -> str:
    """What to add to the command that trained into ``run`` to go on from its ``last.pth``:
    ``--resume``, with ``--output-dir RUN`` when the command did not name that folder and
    ``--resume`` alone would look in ``runs/<model_name>``."""
    default = Path("runs") / opts.model_name
    if opts.output_dir is not None or Path(run).resolve() == default.resolve():
        return "--resume"
    return f"--resume --output-dir {run}"


def earlier_run_note(opts: TrainOptions, run: Path) -> tuple[bool, str] | None:
    """(interrupted, one line) when a new run goes to ``runs/<model_name>-N`` because the folder
    before it holds an earlier run: which, whether it was interrupted, and how to go on from it."""
    import torch

    default = Path("runs") / opts.model_name
    suffix = Path(run).name.removeprefix(f"{opts.model_name}-")
    if Path(run).parent != default.parent or not suffix.isdigit():
        return None
    chain = [default] + [default.with_name(f"{opts.model_name}-{i}") for i in range(2, int(suffix))]
    earlier = next((p for p in reversed(chain) if holds_run(p)), None)
    if earlier is None:
        return None
    state = ""
    try:
        ckpt = torch.load(earlier / "last.pth", map_location="cpu", weights_only=True, mmap=True)
        ts, saved = ckpt["train_state"], ckpt["options"]
        done, total, patience = int(ts["epoch"]), int(saved["epochs"]), int(saved.get("patience") or 0)
        early = patience and done - int(ts.get("best_epoch") or 0) >= patience  # early stopping
        if int(ts.get("step") or 0) or (done < total and not early):
            state = f"stopped after epoch {done} of {total}"
    except Exception:  # no or unreadable last.pth: an earlier run, state unknown
        pass
    if not state:
        return False, f"{earlier} holds an earlier run; this one goes to {run} (nothing is written over)"
    return True, (
        f"{earlier} holds an interrupted run ({state}); this one starts over in {run}. To go on from "
        f"that one instead, stop this and run the same command with {resume_flags(opts, earlier)}"
    )


def claim_run_dir(opts: TrainOptions, resume_from: Path | None) -> tuple[Path, RunLock]:
    """The run folder (as :func:`resolve_run_dir` picks it), locked for this run.

    A folder another run is using: the default ``runs/<model_name>`` moves on to ``-2``, ``-3``...;
    a folder named by ``--output-dir`` or a resumed checkpoint is an error (one line). A folder
    holding a finished run is written into only when resuming from it (``--resume``, ``--model``
    of a checkpoint in it) or with ``--exist-ok``.
    """
    explicit = opts.output_dir is not None or resume_from is not None
    while True:
        run = resolve_run_dir(opts, resume_from)
        if explicit:
            _check_overwrite(run, opts)
            return run, lock_run_dir(run)
        lock = RunLock(run)
        if lock.acquire():  # else another run took it just now: the next name
            if not holds_run(run):
                return run, lock
            lock.release()


def _check_overwrite(run: Path, opts: TrainOptions) -> None:
    if opts.exist_ok or not holds_run(run):
        return
    if opts.model is not None and Path(opts.model).resolve().parent == run.resolve():
        return  # going on from (or fine-tuning) a checkpoint of this very run
    if opts.model is not None and not opts.finetune:
        return  # resuming a run elsewhere into this folder: said in the opening lines
    raise ConfigError(
        f"run folder {run} already holds a run ({', '.join(n for n in ('best.pth', 'last.pth') if (run / n).exists())}); "
        "pass --resume to go on from its last.pth, --exist-ok to write over it, or another --output-dir"
    )


# ---- automatic resume (torch elastic restarts, --resume) -----------------------------------------
ELASTIC_MARKER = ".elastic-run"


def elastic_key() -> str | None:
    """Names one torchrun / ``--devices`` job across its restarts (run id, host, launcher pid)."""
    run_id = os.environ.get("TORCHELASTIC_RUN_ID")
    if run_id is None:
        return None
    return f"{run_id}@{socket.gethostname()}:{os.getppid()}"


def _marked_run_dir(opts: TrainOptions) -> Path | None:
    """The run folder an earlier attempt of this elastic job marked as its own."""
    key = elastic_key()
    if key is None:
        return None
    base = Path("runs") / opts.model_name
    candidates = [Path(opts.model).parent] if opts.model is not None else []
    candidates += [base] + sorted(base.parent.glob(f"{opts.model_name}-*")) if base.parent.is_dir() else []
    for folder in candidates:
        marker = folder / ELASTIC_MARKER
        if marker.is_file() and marker.read_text(encoding="utf-8").strip() == key:
            return folder
    return None


def auto_resume_path(opts: TrainOptions) -> tuple[Path | None, str]:
    """``(last.pth, why)`` when the run must go on from its own last checkpoint: after a torch
    elastic restart (``TORCHELASTIC_RESTART_COUNT`` > 0), or with ``--resume``; else ``(None, "")``."""
    restarts = restart_count()
    if not (opts.resume or restarts > 0):
        return None, ""
    folder: Path | None = Path(opts.output_dir) if opts.output_dir is not None else None
    if folder is None and restarts > 0:
        folder = _marked_run_dir(opts)
    if folder is None and opts.resume:
        folder = Path("runs") / opts.model_name
    if folder is not None and (folder / "last.pth").is_file():
        return folder / "last.pth", (f"elastic restart {restarts}" if restarts else "--resume")
    return None, ""
