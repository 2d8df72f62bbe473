"""Shared fixtures and settings for the whole suite: tiny generated data, tiny models, one trained run.

Keep the default suite fast (< 8 min on 2 CPU cores) and lean (< 1 GB of temporary files):

* build models with :data:`ENCODER` (a timm MobileNetV3-small at half width through smp's ``tu-``
  encoders: about 2 M parameters with the Unet decoder, a 26 MB checkpoint with its optimizer
  state, where resnet18 is 14 M parameters and 172 MB) at :data:`TINY` (64x64) pixels;
* train through :data:`TRAIN_FLAGS` (CLI) or :func:`tiny_train_options` (library), 1-2 epochs;
* need a trained model or a finished run folder? Use the session fixture :func:`trained_run`
  (trained once per session) instead of training your own; copy it before changing anything;
* anything slower than a few seconds that is not the only test of a promise goes under
  ``@pytest.mark.slow``: the default ``pytest -q`` skips it (pyproject ``addopts``), ``.ci/run``
  runs ``pytest -q -m slow`` after the default suite.

Temporary folders of passing tests are deleted as soon as each test ends
(pyproject: ``tmp_path_retention_policy = "failed"``).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# No test may reach the network for weights: the hub fails at once instead of retrying.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# The deploy tests load grpc (tritonclient's gRPC client) into this process; with its fork support
# on, a later fork that runs Python before exec (subprocess's preexec_fn) can abort in the child
# (SIGABRT, 'epoll_wait error: Bad file descriptor'). The children here exec at once: no support needed.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")
# One intra-op thread, here and in the segpipe processes tests start: the models are tiny, and on a
# busy machine a second OpenMP thread spins waiting for a core (2-3x the CPU time of one thread).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

#: (width, height) of the generated images and of the tiny models' input.
TINY = (64, 64)
#: The encoder tests build and train (random init: always pass ``encoder_weights="none"``).
ENCODER = "tu-mobilenetv3_small_050"
#: ``segpipe train`` flags for a tiny, fast run (add --data-root, --num-classes, --epochs, --output-dir).
TRAIN_FLAGS = [
    "--encoder",
    ENCODER,
    "--encoder-weights",
    "none",
    "--size",
    "64",
    "64",
    "--batch-size",
    "4",
    "--workers",
    "0",
    "--device",
    "cpu",
]


def tiny_train_options(data_root: Path, output_dir: Path | None, **changes: Any):
    """:class:`~segpipe.options.TrainOptions` for a tiny CPU run (3 classes, 64x64, 1 epoch, batch 4,
    no workers); ``changes`` override any field."""
    from segpipe.options import TrainOptions

    base: dict[str, Any] = dict(
        data_root=data_root,
        num_classes=3,
        encoder=ENCODER,
        encoder_weights="none",
        epochs=1,
        batch_size=4,
        size=TINY,
        workers=0,
        device="cpu",
        output_dir=output_dir,
    )
    return TrainOptions(**{**base, **changes})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """GPU tests skip cleanly where there is no CUDA device."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def one_torch_thread() -> Any:
    """Tiny models on a shared 2-core machine: one intra-op thread is many times faster than two.
    A module asks for it with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


#: Folders the session fixtures below made in the base temp folder: kept until the session ends.
_SESSION_TEMP: set[str] = set()


def _session_dir(factory: pytest.TempPathFactory, name: str) -> Path:
    path = factory.mktemp(name)
    _SESSION_TEMP.add(path.name)
    return path


@pytest.fixture(scope="module", autouse=True)
def _module_temp_cleanup(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Removes what a test module's fixtures made in the base temp folder when the module ends
    (module fixtures held hundreds of MB to the end of the session: the suite's temp files neared
    1 GB). Kept: the session fixtures' folders, and every test's own tmp_path (named after the test;
    pytest deletes those of passing tests and keeps a failed test's)."""
    base = tmp_path_factory.getbasetemp()
    before = {p.name for p in base.iterdir()}
    yield
    for path in base.iterdir():
        if path.name in before or path.name in _SESSION_TEMP or path.name.startswith("test_"):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def index_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 pairs, 64x64 PNG images, single-channel index masks, 3 classes (10 train, 2 validation)."""
    from segpipe.data.synthetic import make_dataset

    return make_dataset(_session_dir(tmp_path_factory, "index_ds"), count=12, size=TINY, num_classes=3, seed=1)


@pytest.fixture(scope="session")
def color_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 pairs, JPEG images, RGB colour masks through ``colors.csv`` in the data root, 4 classes."""
    from segpipe.data.synthetic import make_dataset

    return make_dataset(
        _session_dir(tmp_path_factory, "color_ds"),
        count=12,
        size=TINY,
        num_classes=4,
        color_masks=True,
        image_ext=".jpg",
        seed=2,
    )


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained segpipe checkpoint (Unet/:data:`ENCODER`, 3 classes, 64x64), no optimizer state."""
    from segpipe.modelinfo import ModelInfo
    from segpipe.models import create_model, save_checkpoint

    info = ModelInfo(
        arch="Unet",
        encoder=ENCODER,
        num_classes=3,
        input_size=TINY,
        class_names=("bg", "a", "b"),
        colors=((0, 0, 0), (255, 0, 0), (0, 255, 0)),
    )
    torch.manual_seed(0)
    path = _session_dir(tmp_path_factory, "ckpt") / "tiny.pth"
    return save_checkpoint(path, create_model(info, None), info)


@dataclass(frozen=True)
class TrainedRun:
    """A finished ``segpipe train`` run (see :func:`trained_run`). Treat it as read-only."""

    #: The run folder: best.pth, last.pth, metrics.csv, curves.png, val_samples.png, options.yaml...
    dir: Path
    #: The dataset it was trained on (the session's ``index_dataset``).
    data: Path
    #: Everything ``segpipe train`` printed (the CLI run, in process).
    output: str
    #: The command line after ``segpipe`` (paths as strings).
    args: tuple[str, ...]

    @property
    def best(self) -> Path:
        return self.dir / "best.pth"

    @property
    def last(self) -> Path:
        return self.dir / "last.pth"


@pytest.fixture(scope="session")
def trained_run(index_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    """ONE tiny model trained once per session through the CLI, shared by every test that needs a
    trained checkpoint or a complete run folder: ``segpipe train`` on ``index_dataset`` (3 classes
    ``bg,a,b``, 64x64), Unet/:data:`ENCODER`, 2 epochs, batch 4, CPU, seed 0, given with the
    original tool's flag spellings (``--data_root``, ``--num_classes``, ``--model_name``,
    ``--backend``).

    Use ``trained_run.best`` / ``trained_run.last`` / ``trained_run.dir``. Never write into its
    folder or resume it in place: ``shutil.copytree(trained_run.dir, tmp_path / "run")`` first.
    """
    from typer.testing import CliRunner

    from segpipe.cli.app import app

    out = _session_dir(tmp_path_factory, "trained_run") / "run"
    args = (
        "train",
        "--data_root",
        str(index_dataset),
        "--num_classes",
        "3",
        "--model_name",
        "tiny",
        "--backend",
        ENCODER,
        "--epochs",
        "2",
        "--seed",
        "0",
        "--class-names",
        "bg,a,b",
        "--output-dir",
        str(out),
        *TRAIN_FLAGS[2:],  # TRAIN_FLAGS without --encoder (given as --backend above)
    )
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return TrainedRun(dir=out, data=index_dataset, output=result.output, args=args)


@pytest.fixture(scope="session")
def voc_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Pascal VOC folder as the data set ships it (12 images, 8 train / 4 val, P-mode masks with
    255 borders, classes 0, 1 and 15): see tests/format_data.py."""
    from format_data import make_voc

    return make_voc(_session_dir(tmp_path_factory, "voc") / "VOC2012")


@pytest.fixture(scope="session")
def cityscapes_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Cityscapes folder (6 train / 2 val images, 64x32, gtFine labelIds): tests/format_data.py."""
    from format_data import make_cityscapes

    return make_cityscapes(_session_dir(tmp_path_factory, "cityscapes"))
