"""Experiment loggers of a training run (``--logger``), rank 0 only, writing into the run folder
(no network):

* ``tensorboard``: event files in the run folder (``tensorboard --logdir runs`` shows every run):
  per epoch the losses, mIoU, pixel accuracy, per-class IoU, learning rate and the validation
  sample figure;
* ``mlflow``: the same scalars in a file-based tracking store ``<run>/mlruns`` (``mlflow ui
  --backend-store-uri <run>/mlruns``), the sample figure per epoch and, at the end, the run
  folder's files as artifacts;
* ``auto`` (default): TensorBoard when the ``tensorboard`` package is installed, else nothing.

Both packages are optional extras (``pip install 'segpipe[tensorboard]'`` / ``'segpipe[mlflow]'``),
imported only when used.
"""

from __future__ import annotations

import importlib.util
import math
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from segpipe.errors import ConfigError

EXTRAS = {"tensorboard": "tensorboard", "mlflow": "mlflow"}
MLFLOW_RUN_FILE = ".mlflow-run-id"


def installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def resolve_logger(kind: str) -> str:
    """``auto`` -> ``tensorboard`` or ``none``; an explicit logger whose package is missing: one line."""
    if kind == "auto":
        return "tensorboard" if installed("tensorboard") else "none"
    if kind in EXTRAS and not installed(EXTRAS[kind]):
        raise ConfigError(
            f"--logger {kind}: the {EXTRAS[kind]} package is not installed "
            f"(pip install 'segpipe[{kind}]'), or pass --logger none"
        )
    return kind


def epoch_scalars(row: dict[str, Any], class_names: Sequence[str]) -> dict[str, float]:
    """The finite scalars of one ``metrics.csv`` row, named for the loggers."""
    out = {
        "loss/train": row.get("train_loss"),
        "loss/val": row.get("val_loss"),
        "val/mIoU": row.get("miou"),
        "val/pixel_accuracy": row.get("pixel_accuracy"),
        "lr": row.get("lr"),
        "time_s": row.get("time_s"),
    }
    for name, iou in zip(class_names, row.get("iou") or [], strict=False):
        out[f"IoU/{name}"] = iou
    return {k: float(v) for k, v in out.items() if v is not None and math.isfinite(float(v))}


class RunLogger:
    """Does nothing (``--logger none``); the base of the others."""

    def epoch(self, epoch: int, scalars: dict[str, float], figure: Callable[[Path], Any] | None) -> None:
        """Log epoch ``epoch`` (from 1); ``figure(path)`` writes the sample PNG to ``path``."""

    def close(self, run_dir: Path) -> None:
        """Flush; the run folder's files are final."""


class TensorBoardLogger(RunLogger):
    def __init__(self, run_dir: Path, start_epoch: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # resuming: events of epochs after the checkpoint (an interrupted attempt) are dropped
        self.writer = SummaryWriter(log_dir=str(run_dir), purge_step=start_epoch + 1 if start_epoch else None)

    def epoch(self, epoch: int, scalars: dict[str, float], figure: Callable[[Path], Any] | None) -> None:
        for key, value in scalars.items():
            self.writer.add_scalar(key, value, epoch)
        if figure is not None:
            image = _render(figure)
            if image is not None:
                self.writer.add_image("val/samples", image, epoch, dataformats="HWC")
        self.writer.flush()

    def close(self, run_dir: Path) -> None:
        self.writer.close()


class MlflowLogger(RunLogger):
    def __init__(self, run_dir: Path, options: dict[str, Any]) -> None:
        # MLflow 3 keeps its file store "in maintenance mode" behind this switch; a file store
        # needs no server and no database driver
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=(run_dir / "mlruns").resolve().as_uri())
        exp = self.client.get_experiment_by_name("segpipe")
        exp_id = exp.experiment_id if exp is not None else self.client.create_experiment("segpipe")
        id_file = run_dir / MLFLOW_RUN_FILE
        self.run_id = id_file.read_text(encoding="utf-8").strip() if id_file.is_file() else ""
        if self.run_id:
            try:
                self.client.get_run(self.run_id)
            except Exception:  # noqa: BLE001 - a stale id: start a new run
                self.run_id = ""
        if not self.run_id:
            self.run_id = self.client.create_run(exp_id, run_name=run_dir.name).info.run_id
            id_file.write_text(self.run_id + "\n", encoding="utf-8")
            for key, value in options.items():
                self.client.log_param(self.run_id, key, str(value)[:500])

    def epoch(self, epoch: int, scalars: dict[str, float], figure: Callable[[Path], Any] | None) -> None:
        for key, value in scalars.items():
            self.client.log_metric(self.run_id, key.replace("/", "_"), value, step=epoch)
        if figure is not None:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / f"val_samples_epoch{epoch:03d}.png"
                figure(path)
                if path.is_file():
                    self.client.log_artifact(self.run_id, str(path), "val_samples")

    def close(self, run_dir: Path) -> None:
        for path in sorted(run_dir.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                self.client.log_artifact(self.run_id, str(path))
        self.client.set_terminated(self.run_id)


def _render(figure: Callable[[Path], Any]) -> Any:
    import cv2

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "samples.png"
        figure(path)
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def make_logger(kind: str, run_dir: Path, start_epoch: int, options: dict[str, Any]) -> RunLogger:
    """The logger ``kind`` (already resolved by :func:`resolve_logger`) for ``run_dir``."""
    if kind == "tensorboard":
        return TensorBoardLogger(run_dir, start_epoch)
    if kind == "mlflow":
        return MlflowLogger(run_dir, options)
    return RunLogger()
