"""``train(TrainOptions, Reporter) -> RunResult``, the entry point above the loop: it runs the
:class:`~segpipe.training.loop.Trainer` in this process or, for ``segpipe train --devices N``, starts
N training processes on this machine through torch's own elastic launcher
(``torch.distributed.launcher.api.elastic_launch``, the API behind torchrun).

Each process runs ``python -m segpipe train --config <the resolved options>``, exactly what
``torchrun --standalone --nproc-per-node N -m segpipe train ...`` would run, with the same
environment (``RANK``, ``WORLD_SIZE``, ...). This process only launches, waits and sums up: it
resolves the run folder first, so every attempt of an elastic job (``--max-restarts``) writes to
the same one and a restart resumes from its ``last.pth``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import sys
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch

from segpipe.errors import ConfigError, SegpipeError
from segpipe.models import load_checkpoint
from segpipe.options import TrainOptions
from segpipe.progress import Reporter
from segpipe.training import distributed
from segpipe.training.guard import TrainingInterrupted
from segpipe.training.loop import Trainer
from segpipe.training.metrics import SegMetrics
from segpipe.training.runlog import write_options_yaml
from segpipe.training.setup import auto_resume_path, resolve_run_dir, resumable
from segpipe.training.state import RunResult
from segpipe.utils import resolve_device, under_elastic

#: Set in the launched processes: they leave the closing summary to the launcher.
LAUNCHED_ENV = "SEGPIPE_LAUNCHED"


class LaunchFailed(SegpipeError):
    """A launched process failed. ``reported``: it already printed its own one-line error."""

    def __init__(self, message: str, exit_code: int = 1, reported: bool = False) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.reported = reported


def planned_run_dir(opts: TrainOptions) -> Path:
    """The run folder the launched processes will use (what rank 0 would pick)."""
    auto, _ = auto_resume_path(opts)
    if auto is not None:
        return auto.parent
    if opts.output_dir is not None:
        return Path(opts.output_dir)
    if opts.model is not None and Path(opts.model).is_file() and not opts.finetune:
        ckpt = load_checkpoint(opts.model, trust=opts.trust_checkpoint)
        if resumable(ckpt):
            return Path(opts.model).parent
    return resolve_run_dir(opts, None)


@contextlib.contextmanager
def _launch_environment(processes: int) -> Iterator[None]:
    """What the launched processes inherit: one CPU share of threads each, the launched flag; and
    torch elastic's own log lines kept down to errors (unless ``SEGPIPE_DEBUG``)."""
    saved = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", LAUNCHED_ENV)}
    if "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // processes))
    os.environ[LAUNCHED_ENV] = "1"
    levels = {}
    if not os.environ.get("SEGPIPE_DEBUG"):
        for name in list(logging.root.manager.loggerDict):
            if name.startswith("torch.distributed"):
                lg = logging.getLogger(name)
                levels[name] = lg.level
                lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _failure(exc: Exception) -> SegpipeError:
    """One error for a failed launch; quiet when the failing process printed its own line."""
    rank, failure = exc.get_first_failure()  # type: ignore[attr-defined]
    code = int(failure.exitcode)
    if code == 1:
        return LaunchFailed(f"training process rank {rank} failed (its error is above)", 1, reported=True)
    if code in (128 + signal.SIGINT, 128 + signal.SIGTERM):
        message = f"training process rank {rank} was interrupted (see above)"
        return TrainingInterrupted(message, code, reported=True)
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        hint = " (out of memory?)" if -code == signal.SIGKILL else ""
        return LaunchFailed(f"training process rank {rank} was killed by {name}{hint}", 128 - code)
    return LaunchFailed(f"training process rank {rank} exited with code {code}", code)


def _shutdown_timeout(config_cls: type) -> dict[str, int]:
    """Seconds the launcher waits for stopped processes to save before it kills them (default
    120, or ``TORCH_ELASTIC_SHUTDOWN_TIMEOUT``); older torch has no such setting (30 s)."""
    if "shutdown_timeout" not in {f.name for f in dataclasses.fields(config_cls)}:
        return {}
    return {"shutdown_timeout": int(os.environ.get("TORCH_ELASTIC_SHUTDOWN_TIMEOUT", "120"))}


def launch(opts: TrainOptions, reporter: Reporter | None = None) -> RunResult:
    """Run ``opts.devices`` training processes here and wait for them; returns rank 0's result,
    read back from the run folder."""
    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs, SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    reporter = reporter or Reporter()
    n = opts.devices
    device = resolve_device(opts.device)
    if device.type == "cuda":
        if device.index is not None:
            raise ConfigError(
                f"--device {opts.device}: --devices {n} takes cuda:0..{n - 1}; pass --device cuda and "
                "choose the GPUs with CUDA_VISIBLE_DEVICES"
            )
        if n > torch.cuda.device_count():
            raise ConfigError(f"--devices {n}: only {torch.cuda.device_count()} CUDA device(s) visible")
    run_dir = planned_run_dir(opts)
    backend = "nccl" if device.type == "cuda" else "gloo"
    reporter.info(
        f"launching {n} training processes ({backend}, {device.type}) through torch.distributed's "
        f"elastic launcher; max restarts {opts.max_restarts}; run folder {run_dir}"
    )
    with tempfile.TemporaryDirectory(prefix="segpipe-launch-") as tmp:
        plain = opts.replace(output_dir=run_dir).to_dict()
        plain["trust_checkpoint"] = opts.trust_checkpoint  # this private file only (see to_dict)
        config_file = write_options_yaml(plain, Path(tmp) / "options.yaml")
        config = LaunchConfig(
            min_nodes=1,
            max_nodes=1,
            nproc_per_node=n,
            run_id=f"segpipe-{uuid.uuid4().hex[:12]}",
            rdzv_backend="c10d",
            rdzv_endpoint="localhost:0",
            max_restarts=opts.max_restarts,
            monitor_interval=0.2,
            logs_specs=DefaultLogsSpecs(log_dir=str(Path(tmp) / "logs")),
            **_shutdown_timeout(LaunchConfig),
        )
        args = ["-m", "segpipe", "train", "--config", str(config_file)]
        try:
            with _launch_environment(n):
                elastic_launch(config, sys.executable)(*args)
        except ChildFailedError as e:
            raise _failure(e) from None
        except SignalException as e:
            name = signal.Signals(e.sigval).name
            raise TrainingInterrupted(f"interrupted by {name}", 128 + int(e.sigval), reported=True) from None
    return result_from_run_dir(run_dir, opts)


def result_from_run_dir(run_dir: Path, opts: TrainOptions) -> RunResult:
    """A RunResult from what the run folder's last.pth says."""
    last, best = run_dir / "last.pth", run_dir / "best.pth"
    state = load_checkpoint(last).train_state or {}
    history = list(state.get("history", []))
    final = None
    if history and history[-1].get("iou"):
        row = history[-1]
        final = SegMetrics(float(row["miou"]), list(row["iou"]), float(row["pixel_accuracy"]))
    return RunResult(
        run_dir,
        best,
        last,
        float(state.get("best_metric", float("nan"))),
        int(state.get("best_epoch", 0)),
        len(history),
        history,
        len(history) < opts.epochs,
        final,
    )


def train(opts: TrainOptions, reporter: Reporter | None = None) -> RunResult:
    """Train a segmentation model as ``opts`` says; see :class:`TrainOptions`.

    In a process started by torchrun this process joins the job (DDP; only rank 0 reports and
    writes files). With ``opts.devices > 1`` outside torchrun, it launches that many processes
    through torch's elastic launcher and waits for them (:func:`launch`).
    """
    if opts.devices > 1 and not under_elastic():
        return launch(opts, reporter)
    env = distributed.setup(opts.device)
    if not env.is_main:
        warnings.simplefilter("ignore")  # rank 0 shows each warning once
    reporter = (reporter or Reporter()) if env.is_main else Reporter()
    if opts.devices > 1 and opts.devices != env.world_size:
        reporter.warn(f"--devices {opts.devices} ignored: torchrun started {env.world_size} process(es)")
    try:
        trainer = Trainer(opts, reporter, env)
        try:
            return trainer.fit()
        finally:
            trainer.close_loaders()
            trainer.release_run_dir()
    finally:
        distributed.teardown(env)
