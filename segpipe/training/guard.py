"""Crash safety of a training run: stop cleanly on SIGINT / SIGTERM, stop on a non-finite loss.

* :class:`StopGuard`: while a run trains, the first SIGINT or SIGTERM only asks the loop to stop
  once the current step is done; the loop then writes ``last.pth`` (atomically) and raises
  :class:`TrainingInterrupted`, which the CLI turns into one line saying how to resume and exit
  code 128 + signal number. The handlers are reset to the system's defaults at the first signal,
  so a second one ends the process at once, wherever it is (even inside a save: checkpoints are
  written to a temporary file and renamed, so ``last.pth`` is never truncated).
* :class:`NonFiniteLoss`: a NaN or infinite loss stops the run without saving, so the last
  checkpoint on disk is the last good one (unless ``--skip-nonfinite``).
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from segpipe.errors import SegpipeError
from segpipe.utils import die_cleanly, under_elastic

#: The stop signals: Ctrl-C, ``kill``/``timeout``/Slurm's ``scancel``, and a closing terminal.
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def quiet_worker(worker_init: Any = None) -> Any:
    """A DataLoader ``worker_init_fn`` that leaves the stop signals to the main process, then calls
    ``worker_init``.

    A signal sent to the whole process group (Ctrl-C, ``timeout``, ``scancel``, a closing
    terminal) reaches every loader worker too. Left alone, a worker dies of SIGTERM, and the main
    process then fails with "DataLoader worker is killed by signal" before it can save; on SIGINT
    every worker prints the stop message and a traceback of its own. So the workers ignore SIGINT
    and SIGHUP, and ignore SIGTERM unless it comes from the main process itself (which is how
    torch and multiprocessing shut workers down) or the main process is gone. The main process
    finishes the step, saves ``last.pth`` and shuts the workers down as usual.
    """
    return functools.partial(_quiet_worker_init, worker_init)


def _quiet_worker_init(worker_init: Any, worker_id: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if hasattr(signal, "sigwaitinfo"):  # Linux: who sent a SIGTERM decides (see quiet_worker)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        parent = os.getppid()
        threading.Thread(target=_sigterm_from_parent, args=(parent,), daemon=True).start()
    if worker_init is not None:
        worker_init(worker_id)


def _sigterm_from_parent(parent: int) -> None:
    """In a loader worker (SIGTERM blocked): die of a SIGTERM the main process sends, or of any
    once the main process is gone; ignore the ones a whole process group gets."""
    while True:
        info = signal.sigwaitinfo({signal.SIGTERM})
        if info.si_pid == parent or os.getppid() != parent:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})  # this thread only
            signal.pthread_kill(threading.get_ident(), signal.SIGTERM)  # default action: exit
            return


class TrainingInterrupted(SegpipeError):
    """A stop signal ended the run after ``last.pth`` was written. ``exit_code`` is 128 + signal."""

    collective = True
    heading = "stopped"

    def __init__(
        self, message: str, exit_code: int = 130, last_path: Path | None = None, reported: bool = False
    ) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.last_path = last_path
        #: The line was already printed (by rank 0 of a launched job).
        self.reported = reported


class NonFiniteLoss(SegpipeError):
    """The loss became NaN or infinite; nothing was saved after the last good checkpoint."""

    collective = True


class StopGuard:
    """Context manager catching SIGINT and SIGTERM during training (main thread only; elsewhere,
    e.g. in a library user's worker thread, it does nothing).

    ``announce``: write one line to stderr at the first signal (rank 0 only in distributed runs).
    """

    def __init__(self, announce: bool = True) -> None:
        self.announce = announce
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        """A stop signal arrived."""
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or signal.SIGINT)

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum or signal.SIGINT).name

    def request(self, signum: int = signal.SIGINT) -> None:
        """Ask for a stop as if ``signum`` had arrived (tests, embedding applications)."""
        self.signum = signum

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum
        for s in SIGNALS:  # a second signal now ends the process at once (temporary files removed)
            signal.signal(s, die_cleanly)
        if self.announce:
            name = signal.Signals(signum).name
            with contextlib.suppress(OSError):  # stderr may be gone (a closed terminal)
                os.write(
                    2,
                    f"\n{name}: stopping after the current step and saving last.pth "
                    "(send it again to exit at once)\n".encode(),
                )

    def __enter__(self) -> StopGuard:
        if threading.current_thread() is threading.main_thread():
            for s in SIGNALS:
                self._previous[s] = signal.getsignal(s)
                signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        self._previous.clear()


def resume_hint(
    last_path: Path, options_path: Path, dataset: str | None = None, resume_flags: str = "--resume"
) -> str:
    """How to go on from ``last_path``, as one clause: the same command with ``resume_flags``
    (``--resume``, plus ``--output-dir RUN`` when the command did not name the run's folder), or
    the explicit command (``dataset``: the run's ``--dataset``, which a config file cannot set)."""
    if under_elastic():
        return f"resume by running the same command with --model {last_path} (or add --resume)"
    extra = f" --dataset {dataset}" if dataset else ""
    return (
        f"to go on, run the same command with {resume_flags} "
        f"(or: segpipe train --model {last_path} --config {options_path}{extra})"
    )


def nonfinite_message(
    epoch: int,
    step: int,
    steps: int,
    lr: float,
    last_path: Path,
    last_saved: str | None,
    class_weights: object = None,
) -> str:
    """The one line a non-finite loss stops the run with (epochs and steps counted from 1;
    ``last_saved`` says what ``last_path`` holds, e.g. ``epoch 3``; None: nothing yet). Large
    ``class_weights`` (the resolved weights) are named as the likelier cause than the learning rate."""
    kept = (
        f"kept the last good checkpoint {last_path} ({last_saved})"
        if last_saved is not None
        else "no checkpoint had been written yet"
    )
    advice = f"try a lower --lr than {lr:g} (e.g. {lr / 10:.2g})"
    weights = (
        [w for w in class_weights if isinstance(w, (int, float))] if isinstance(class_weights, tuple) else []
    )
    if weights and max(weights) >= 100:
        advice = (
            f"--class-weights up to {max(weights):g} multiply the loss: try smaller weights (or "
            f"--class-weight-cap), then a lower --lr than {lr:g}"
        )
    return (
        f"the loss became NaN or infinite at epoch {epoch}, step {step} of {steps}; stopped without saving, "
        f"{kept}; {advice}, or --skip-nonfinite to skip such batches"
    )
