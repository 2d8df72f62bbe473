"""The training recipe: --class-weights, --ema (exact resume), --warmup-epochs, --logger."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import ENCODER
from typer.testing import CliRunner

from segpipe.cli.app import app
from segpipe.errors import ConfigError
from segpipe.options import TrainOptions
from segpipe.progress import RecordingReporter
from segpipe.training import train
from segpipe.training.ema import LinearWarmup
from segpipe.training.loggers import resolve_logger
from segpipe.training.loop import Trainer
from segpipe.training.losses import SumLoss, frequency_weights, read_class_weights, resolve_class_weights

runner = CliRunner()
FAST = ["--encoder-weights", "none", "--size", "64", "64", "--batch-size", "4", "--workers", "0"]


def tiny(data: Path, out: Path, **kw) -> TrainOptions:
    base = dict(
        data_root=data,
        num_classes=3,
        encoder=ENCODER,  # the suite's tiny encoder: resnet18 checkpoints with EMA made 650 MB
        encoder_weights="none",
        epochs=1,
        batch_size=4,
        size=(64, 64),
        workers=0,
        device="cpu",
        seed=3,
        logger="none",
        output_dir=out,
    )
    return TrainOptions(**{**base, **kw})


# ---- class weights -----------------------------------------------------------------------------------
def test_frequency_weights_inverse_capped_and_normalised() -> None:
    counts = [900, 90, 9, 1]
    inv = np.array(frequency_weights(counts, "inverse", cap=10.0))
    share = np.array(counts) / sum(counts)
    assert np.isclose((share * inv).sum(), 1.0, atol=1e-5)  # a pixel weighs 1 on average
    assert np.isclose(inv[1] / inv[0], 10.0, atol=1e-4) and np.isclose(inv[3], inv[2])  # capped at 10x
    sq = np.array(frequency_weights(counts, "sqrt-inverse", cap=100.0))
    assert np.isclose(sq[1] / sq[0], np.sqrt(10), atol=1e-4) and np.isclose(
        sq[3] / sq[0], np.sqrt(900), atol=1e-3
    )
    assert frequency_weights([5, 0, 5], "inverse", 3.0)[1] == pytest.approx(
        3.0 * frequency_weights([5, 0, 5], "inverse", 3.0)[0]
    )


def test_class_weight_file_and_list(tmp_path: Path) -> None:
    f = tmp_path / "w.txt"
    f.write_text("# weights\nbackground, 0.5\n\n2\ncar 4  # rare\n")
    assert read_class_weights(f, 3) == (0.5, 2.0, 4.0)
    assert resolve_class_weights(str(f), 3, None) == (0.5, 2.0, 4.0)
    assert resolve_class_weights("1,2,3", 3, None) == (1.0, 2.0, 3.0)
    assert resolve_class_weights("none", 3, [1, 2, 3]) is None
    bad = tmp_path / "bad.txt"
    bad.write_text("1\nlots\n3\n")
    with pytest.raises(ConfigError, match=r"bad.txt line 2: 'lots' is not a number") as e:
        read_class_weights(bad, 3)
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match=r"w.txt: 3 weights for 4 classes"):
        resolve_class_weights(str(f), 4, None)
    with pytest.raises(ConfigError, match="--class-weights nope.txt"):
        TrainOptions(data_root=tmp_path, class_weights="nope.txt")
    with pytest.raises(ConfigError, match="gives 2 weights for 3 classes"):
        TrainOptions(data_root=tmp_path, num_classes=3, class_weights="1,2")
    with pytest.raises(ConfigError, match="--dataset class skips"):
        resolve_class_weights("inverse", 3, None)


def test_weighted_losses_match_torch_and_report_the_unweighted() -> None:
    torch.manual_seed(0)
    logits, target = torch.randn(2, 3, 8, 8), torch.randint(0, 3, (2, 8, 8))
    target[0, 0, 0] = 255
    w = (0.2, 1.0, 5.0)
    ce = SumLoss("ce", "seg", 3, 255, w)
    expected = torch.nn.functional.cross_entropy(logits, target, weight=torch.tensor(w), ignore_index=255)
    assert torch.allclose(ce(logits, target), expected)
    assert not torch.allclose(SumLoss("ce", "seg", 3, 255)(logits, target), expected)
    mixed = SumLoss("ce+dice+focal+lovasz", "seg", 3, 255, w)
    assert mixed.weighted == ["ce", "dice", "focal"] and mixed.unweighted == ["lovasz"]
    binary = SumLoss("bce+focal", "binary", 2, 255, (1.0, 4.0))
    assert binary.weighted == ["bce", "focal"]
    assert torch.isfinite(binary(torch.randn(2, 1, 8, 8), torch.randint(0, 2, (2, 8, 8))))


def test_cli_class_weights_inverse_recorded(index_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = runner.invoke(
        app,
        [
            "train",
            "--data-root",
            str(index_dataset),
            "--num-classes",
            "3",
            "--encoder",
            ENCODER,
            "--epochs",
            "1",
            "--output-dir",
            str(out),
            "--class-weights",
            "inverse",
            "--loss",
            "ce+lovasz",
            "--logger",
            "none",
            *FAST,
        ],
    )
    assert r.exit_code == 0, r.output
    assert "class weights (inverse pixel share" in r.output and "not to lovasz" in r.output
    saved = yaml.safe_load((out / "options.yaml").read_text())["class_weights"]
    assert isinstance(saved, list) and len(saved) == 3 and all(w > 0 for w in saved)
    # options.yaml is a valid --config: the weights come back as numbers
    from segpipe.options import load_config

    assert TrainOptions(**load_config(out / "options.yaml")).class_weights == tuple(saved)
    ckpt = torch.load(out / "last.pth", weights_only=True)
    assert ckpt["options"]["class_weights"] == saved if "options" in ckpt else True
    bad = tmp_path / "w.txt"
    bad.write_text("1\n2\n")
    r = runner.invoke(
        app,
        [
            "train",
            "--data-root",
            str(index_dataset),
            "--num-classes",
            "3",
            "--epochs",
            "1",
            "--output-dir",
            str(tmp_path / "r2"),
            "--class-weights",
            str(bad),
            *FAST,
        ],
    )
    assert r.exit_code == 1 and "2 weights for 3 classes" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "r2" / "options.yaml").exists()


# ---- EMA ---------------------------------------------------------------------------------------------
def test_ema_validates_and_saves_averaged_weights_and_resumes_exactly(
    index_dataset: Path, tmp_path: Path
) -> None:
    straight = train(tiny(index_dataset, tmp_path / "straight", epochs=2, ema=True, ema_decay=0.9))
    last = torch.load(straight.last_path, weights_only=True)
    best = torch.load(straight.best_path, weights_only=True)
    ema = last["train_state"]["ema"]
    assert ema["updates"] == 4  # 8 training images / batch 4, two epochs
    key = next(k for k, v in ema["weights"].items() if v.dtype.is_floating_point and v.ndim == 4)
    assert not torch.equal(ema["weights"][key], last["state_dict"][key])  # averaged != trained
    if straight.best_epoch == 2:
        assert torch.equal(best["state_dict"][key], ema["weights"][key])  # best.pth = the EMA

    class Stop(Exception):
        pass

    first = Trainer(tiny(index_dataset, tmp_path / "resumed", epochs=2, ema=True, ema_decay=0.9))
    original, calls = first.train_epoch, []

    def once(epoch: int) -> float:
        if calls:
            raise Stop
        calls.append(epoch)
        return original(epoch)

    first.train_epoch = once  # type: ignore[method-assign]
    with pytest.raises(Stop):
        first.fit()
    resumed = Trainer(
        tiny(index_dataset, None, epochs=2, ema=True, ema_decay=0.9, model=tmp_path / "resumed" / "last.pth")
    )
    assert resumed.ema is not None and resumed.ema.updates == 2
    result = resumed.fit()
    assert [r["miou"] for r in result.history] == pytest.approx(
        [r["miou"] for r in straight.history], abs=1e-6
    )
    again = torch.load(result.last_path, weights_only=True)["train_state"]["ema"]
    assert again["updates"] == 4
    for k, v in ema["weights"].items():
        assert torch.allclose(v.float(), again["weights"][k].float(), atol=1e-5), k


# ---- warm-up -----------------------------------------------------------------------------------------
def test_linear_warmup_per_step_then_the_scheduler_untouched() -> None:
    def run(warm: float) -> tuple[list[float], list[float]]:
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=1.0)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4, eta_min=0.01)
        w = LinearWarmup(opt, sched, warm)
        per_step, per_epoch = [], []
        for epoch in range(4):
            per_epoch.append(opt.param_groups[0]["lr"])
            for step in range(4):
                w.apply(epoch, step, 4)
                per_step.append(opt.param_groups[0]["lr"])
                opt.step()
            w.restore()
            sched.step()
        return per_step, per_epoch

    steps, epochs = run(1.5)  # 6 steps of warm-up
    plain_steps, plain_epochs = run(0)
    assert steps[:6] == pytest.approx([plain_steps[i] * (i + 1) / 6 for i in range(6)])
    assert steps[6:] == pytest.approx(plain_steps[6:]) and epochs == pytest.approx(plain_epochs)


def test_cli_warmup_runs(index_dataset: Path, tmp_path: Path) -> None:
    r = runner.invoke(
        app,
        [
            "train",
            "--data-root",
            str(index_dataset),
            "--num-classes",
            "3",
            "--epochs",
            "1",
            "--encoder",
            ENCODER,
            "--output-dir",
            str(tmp_path / "run"),
            "--warmup-epochs",
            "0.5",
            "--logger",
            "none",
            *FAST,
        ],
    )
    assert r.exit_code == 0, r.output
    assert "warm-up: linear over 0.5 epoch" in r.output
    r = runner.invoke(
        app,
        ["train", "--data-root", str(index_dataset), "--num-classes", "3", "--warmup-epochs", "-1", *FAST],
    )
    assert r.exit_code == 1 and "--warmup-epochs -1" in r.output


# ---- loggers -----------------------------------------------------------------------------------------
def test_tensorboard_event_file_readable(index_dataset: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    rep = RecordingReporter()
    out = tmp_path / "run"
    train(tiny(index_dataset, out, epochs=2, logger="auto", class_names=("bg", "a", "b")), rep)
    events = list(out.glob("events.out.tfevents.*"))
    assert len(events) == 1
    acc = EventAccumulator(str(out), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    tags = acc.Tags()
    assert {
        "loss/train",
        "loss/val",
        "val/mIoU",
        "val/pixel_accuracy",
        "lr",
        "IoU/bg",
        "IoU/a",
        "IoU/b",
    } <= set(tags["scalars"])
    assert [e.step for e in acc.Scalars("val/mIoU")] == [1, 2]
    assert 0.0 <= acc.Scalars("val/mIoU")[-1].value <= 1.0
    images = acc.Images("val/samples")
    assert [i.step for i in images] == [1, 2] and images[0].width > 100


def test_mlflow_logger_file_store(index_dataset: Path, tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    out = tmp_path / "run"
    train(tiny(index_dataset, out, logger="mlflow"))
    run_id = (out / ".mlflow-run-id").read_text().strip()
    client = MlflowClient(tracking_uri=(out / "mlruns").resolve().as_uri())
    assert [m.step for m in client.get_metric_history(run_id, "val_mIoU")] == [1]
    names = {a.path for a in client.list_artifacts(run_id)}
    assert {"options.yaml", "metrics.csv", "best.pth", "val_samples"} <= names
    assert client.get_run(run_id).data.params["epochs"] == "1"


def test_logger_missing_package_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import segpipe.training.loggers as loggers

    monkeypatch.setattr(loggers, "installed", lambda name: False)
    assert resolve_logger("auto") == "none"
    with pytest.raises(ConfigError, match=r"--logger tensorboard: .*segpipe\[tensorboard\]"):
        resolve_logger("tensorboard")
    with pytest.raises(ConfigError, match="--logger wandb"):
        TrainOptions(data_root=Path("."), logger="wandb")
