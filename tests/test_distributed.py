"""Distributed training on CPU with the gloo backend, in real processes.

* ``segpipe train --devices 2 --device cpu`` (torch's elastic launcher API): completes, rank 0
  alone writes one run folder, the two ranks train on disjoint halves of the data and validate on
  disjoint shares of the validation images with none counted twice, and the mIoU it reports is
  the mIoU a single process measures on the saved checkpoint.
* ``torchrun --max-restarts 1 -m segpipe train`` (unchanged under torchrun) where rank 1 dies in
  epoch 2 of the first attempt: the restart resumes from ``last.pth`` and ends with the same
  weights as the uninterrupted run.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
import torch
from conftest import ENCODER

from segpipe.data.synthetic import make_dataset
from segpipe.evaluate import evaluate
from segpipe.options import EvaluateOptions, TrainOptions
from segpipe.training.loop import Trainer

TESTS = Path(__file__).parent
TRAIN_IMAGES, VAL_IMAGES, BATCH = 12, 5, 3
COMMON = [
    "--num-classes",
    "3",
    "--encoder",
    ENCODER,
    "--encoder-weights",
    "none",
    "--size",
    "64",
    "64",
    "--batch-size",
    str(BATCH),
    "--workers",
    "0",
    "--epochs",
    "2",
    "--device",
    "cpu",
    "--lr",
    "3e-3",
    "--use-mixup",
    "--dataset",
    "train_helpers:LoggedDataset",
]


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", **extra}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("dist")
    train = make_dataset(root / "train", count=TRAIN_IMAGES, size=(64, 64), num_classes=3, seed=11)
    val = make_dataset(root / "val", count=VAL_IMAGES, size=(64, 64), num_classes=3, seed=12)
    return train, val


@pytest.fixture(scope="module")
def ddp_run(data: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory):
    """One ``--devices 2`` run of 2 epochs, shared by the tests below."""
    train, val = data
    out = tmp_path_factory.mktemp("ddp") / "run"
    log = out.parent / "seen.txt"
    cmd = [
        sys.executable,
        "-m",
        "segpipe",
        "train",
        "--data-root",
        str(train),
        "--val-root",
        str(val),
        *COMMON,
        "--output-dir",
        str(out),
        "--devices",
        "2",
    ]
    r = subprocess.run(
        cmd, env=_env(SEGPIPE_TEST_LOG=str(log)), cwd=out.parent, capture_output=True, text=True, timeout=600
    )
    return r, out, log


def test_two_processes_complete_and_rank0_writes_one_run_folder(ddp_run) -> None:
    r, out, _ = ddp_run
    assert r.returncode == 0, r.stdout + r.stderr
    files = {p.name for p in out.iterdir()}
    events = {f for f in files if f.startswith("events.out.tfevents.")}
    assert len(events) <= 1, events  # TensorBoard (when installed): rank 0's file only
    assert files - events == {
        "best.pth",
        "last.pth",
        "metrics.csv",
        "curves.png",
        "options.yaml",
        "val_samples.png",
        "augment.yaml",
        ".elastic-run",
    }, files
    state = torch.load(out / "last.pth", weights_only=True)["train_state"]
    assert state["world_size"] == 2 and state["epoch"] == 2 and state["step"] == 0
    # rank 0 alone reports: each line once; batch and learning rate as the whole job sees them
    line = "distributed: 2 processes (gloo), batch 3 per process, effective batch 6; lr 0.003"
    assert r.stdout.count(line) == 1
    assert r.stdout.count("train loss") == 2  # one table per epoch
    assert r.stdout.count("done: 2 epochs trained") == 1
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [row["epoch"] for row in rows] == ["1", "2"]


def test_ranks_see_disjoint_halves_and_validate_each_image_once(ddp_run, data) -> None:
    r, _, log = ddp_run
    assert r.returncode == 0, r.stderr
    seen: dict[tuple[str, str], list[str]] = defaultdict(list)
    for line in log.read_text().splitlines():
        rank, split, name = line.split()
        seen[(rank, split)].append(name)
    for key, names in seen.items():  # train's --dataset check reads pair 0 once, up front, per rank
        assert names[0] == "sample_000", (key, names[:3])
        seen[key] = names[1:]
    train_names = {p.stem for p in (data[0] / "images").iterdir()}
    half = TRAIN_IMAGES // 2
    for key in (("0", "train"), ("1", "train")):
        assert len(seen[key]) == 2 * half  # two epochs, half of the images each
    for epoch in range(2):
        a = set(seen[("0", "train")][epoch * half : (epoch + 1) * half])
        b = set(seen[("1", "train")][epoch * half : (epoch + 1) * half])
        assert len(a) == len(b) == half and not a & b and a | b == train_names
    # validation: 5 images over 2 ranks -> 3 + 2 per epoch, none repeated to even the shares out
    # (rank 0 also reads 4 validation images per improved epoch for val_samples.png, after validating)
    v0, v1 = seen[("0", "val")], seen[("1", "val")]
    val_names = {p.stem for p in (data[1] / "images").iterdir()}
    assert len(v1) == 2 * 2 and v1[:2] == v1[2:]
    assert len(set(v0[:3])) == 3 and set(v0[:3]) | set(v1) == val_names and not set(v0[:3]) & set(v1)


def test_reported_miou_matches_single_process_evaluation(ddp_run, data, tmp_path: Path) -> None:
    r, out, _ = ddp_run
    assert r.returncode == 0, r.stderr
    reported = torch.load(out / "last.pth", weights_only=True)["train_state"]["history"][-1]["miou"]
    assert f"{reported:.6g}" == list(csv.DictReader((out / "metrics.csv").open()))[-1]["miou"]
    # segpipe evaluate: another code path (the inference pipeline), one process
    evaluated = evaluate(
        EvaluateOptions(data_root=data[1], model=out / "last.pth", device="cpu", workers=1)
    ).miou
    assert abs(reported - evaluated) < 1e-6, (reported, evaluated)
    # and the training loop's own validation, one process, all images in one shard
    single = Trainer(
        TrainOptions(
            data_root=data[0],
            val_root=data[1],
            dataset="train_helpers:LoggedDataset",
            num_classes=3,
            encoder=ENCODER,
            model=out / "last.pth",
            finetune=True,
            size=(64, 64),
            batch_size=4,
            workers=0,
            device="cpu",
            output_dir=tmp_path / "single",
        )
    )
    _, metrics = single.validate(0)
    assert abs(reported - metrics.miou) < 1e-6, (reported, metrics.miou)


@pytest.mark.slow  # 30 s: a second two-process run, killed and restarted
def test_torchrun_elastic_restart_resumes_from_last_and_ends_the_same(ddp_run, data, tmp_path: Path) -> None:
    r0, straight, _ = ddp_run
    assert r0.returncode == 0, r0.stderr
    train, val = data
    out = tmp_path / "elastic"
    # rank 1 dies at its 10th training sample: in epoch 2, after epoch 1's last.pth was written
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "--max-restarts",
        "1",
        "-m",
        "segpipe",
        "train",
        "--data-root",
        str(train),
        "--val-root",
        str(val),
        *COMMON,
        "--output-dir",
        str(out),
    ]
    r = subprocess.run(
        cmd, env=_env(SEGPIPE_TEST_CRASH="1:10"), cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"elastic restart 1: resuming from {out / 'last.pth'}" in r.stdout
    assert "going on at epoch 2 of 2" in r.stdout
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [row["epoch"] for row in rows] == ["1", "2"]
    a = torch.load(straight / "last.pth", weights_only=True)["state_dict"]
    b = torch.load(out / "last.pth", weights_only=True)["state_dict"]
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-5), k
