"""segpipe train under real use (issue 9), grouped by promise: signals, run folders, config files,
full disks, file modes, bad values, silent results.

Tiny and fast: 64x64 images, Linknet/mobilenet_v2 (17 MB of weights), one epoch of one or two steps.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
import yaml
from mounts import tmpfs
from typer.testing import CliRunner

from segpipe.cli.app import app
from segpipe.data.synthetic import make_dataset
from segpipe.errors import ConfigError
from segpipe.options import TrainOptions, load_config
from segpipe.training.runlock import RunLock, in_use
from segpipe.utils import atomic_path, atomic_write_text

TESTS = Path(__file__).parent
runner = CliRunner()

SMALL = [
    "--num-classes", "3", "--arch", "Linknet", "--encoder", "mobilenet_v2", "--encoder-weights", "none",
    "--size", "64", "64", "--device", "cpu", "--batch-size", "2", "--workers", "0",
]  # fmt: skip


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    from segpipe.cli import common

    monkeypatch.setitem(common._state, "debug", False)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 images: 3 for training (2 steps of at most 2), 1 for validation."""
    return make_dataset(tmp_path_factory.mktemp("dep") / "d", count=4, size=(64, 64), num_classes=3, seed=4)


def train_cli(*args: object) -> object:
    return runner.invoke(app, ["train", *(str(a) for a in args)])


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(TESTS)}


def _one_error_line(output: str) -> str:
    lines = [ln for ln in output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in output, output
    return lines[0]


@pytest.fixture(scope="module")
def finished(data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """One finished run (1 epoch), written under umask 027."""
    out = tmp_path_factory.mktemp("finished") / "run"
    old = os.umask(0o027)
    try:
        r = train_cli("--data-root", data, *SMALL, "--epochs", 1, "--output-dir", out)
    finally:
        os.umask(old)
    assert r.exit_code == 0, r.output
    return out, r


# ---- signals -------------------------------------------------------------------------------------
def _spawn_train(data: Path, out: Path, workers: int = 2) -> subprocess.Popen:
    args = [*SMALL, "--epochs", "50", "--output-dir", str(out)]
    args[args.index("--workers") + 1] = str(workers)
    return subprocess.Popen(
        [sys.executable, "-m", "segpipe", "train", "--data-root", str(data), *args],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a shell job or a Slurm step
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 240) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"ended early ({proc.returncode}): {proc.communicate()[1][-3000:]}")
        if time.monotonic() > end:
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError("timed out")
        time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_to_the_process_group_with_workers_saves_and_says_how_to_resume(
    data: Path, tmp_path: Path, sig: signal.Signals
) -> None:
    """``timeout``/``scancel``/Ctrl-C signal every process of the group, loader workers too."""
    out = tmp_path / "run"
    proc = _spawn_train(data, out, workers=2)
    _wait_for(out / "metrics.csv", proc)  # epoch 1 done, workers alive (persistent)
    os.killpg(proc.pid, sig)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 128 + sig, err[-3000:]
    assert "Traceback" not in err and "Exception ignored" not in err, err[-3000:]
    assert err.count(f"{sig.name}: stopping") == 1, err[-3000:]
    stopped = [ln for ln in err.splitlines() if ln.startswith("stopped:")]
    assert len(stopped) == 1 and f"interrupted by {sig.name}" in stopped[0], err[-3000:]
    assert "run the same command with --resume" in stopped[0]
    assert f"(or: segpipe train --model {out / 'last.pth'}" in stopped[0]
    assert torch.load(out / "last.pth", weights_only=True)["train_state"]["epoch"] >= 1
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")], list(out.iterdir())


def _sigint_default() -> None:
    """In the child before exec: SIGINT at its default action, as a terminal gives it.

    A suite started as a background job of a non-interactive shell (``pytest ... &``) inherits
    SIGINT ignored, and Python leaves an inherited SIG_IGN alone (no KeyboardInterrupt). segpipe
    respects that too: a job its shell shields from Ctrl-C stays shielded, so the test, not the
    entry point, sets the disposition it is about."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_sigint_while_importing_is_one_line_and_exit_130(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import os, signal, sys
        sys.argv = ["segpipe", "train", "--help"]
        import segpipe.cli              # what the console script imports first
        os.kill(os.getpid(), signal.SIGINT)
        import segpipe.cli.app          # still importing when Ctrl-C arrives
        segpipe.cli.app.main()
        """
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_sigint_default,
    )
    assert r.returncode == 130 and r.stderr.strip().splitlines() == [
        "segpipe: interrupted while starting; nothing was done"
    ], r.stderr
    assert r.stdout == ""


def test_sigterm_during_an_atomic_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    """As in ``export-onnx`` (the writer is stopped in the middle): SIGTERM cleans up like SIGINT."""
    target = tmp_path / "model.onnx"
    code = textwrap.dedent(
        f"""
        import time
        from segpipe.utils import atomic_path
        with atomic_path({str(target)!r}) as tmp:
            tmp.write_bytes(b"x" * 1000)
            tmp.with_name(tmp.name + ".data").write_bytes(b"y")  # as the dynamo exporter does
            print("writing", flush=True)
            time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], env=_env(), stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == -signal.SIGTERM
    assert list(tmp_path.iterdir()) == []


def test_leftovers_of_a_killed_write_are_removed_by_the_next_write(tmp_path: Path) -> None:
    import segpipe.utils as u

    target = tmp_path / "best.pth"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(dead.stdout)
    stale = tmp_path / f".best.pth.{u._host_tag()}-{pid}-abcd.tmp"
    stale_data = tmp_path / f".best.pth.{u._host_tag()}-{pid}-abcd.tmp.data"
    live = tmp_path / f".best.pth.{u._host_tag()}-{os.getppid()}-abcd.tmp"  # a live process's write
    for f in (stale, stale_data, live):
        f.write_bytes(b"partial")
    atomic_write_text(target, "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["best.pth", live.name])


def test_files_a_writer_puts_beside_the_temporary_file_are_removed(tmp_path: Path) -> None:
    """``--exporter dynamo`` writes ``.NAME.onnx.XXXX.tmp.data`` beside the temporary file."""
    with atomic_path(tmp_path / "m.onnx") as tmp:
        tmp.write_bytes(b"graph")
        tmp.with_name(tmp.name + ".data").write_bytes(b"weights")
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


# ---- run folders ---------------------------------------------------------------------------------
def test_a_run_folder_in_use_is_refused_with_one_line(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    with RunLock(out) as lock:
        assert lock.acquire() and in_use(out)
        r = train_cli("--data-root", data, *SMALL, "--epochs", 1, "--output-dir", out)
        assert r.exit_code == 1
        line = _one_error_line(r.output)
        assert f"run folder {out} is in use" in line and f"pid {os.getpid()}" in line
        assert sorted(p.name for p in out.iterdir()) == [".lock"]  # nothing written
    assert not out.exists()  # the lock's folder goes with it when nothing was written


def test_the_default_run_folder_in_use_moves_on_to_the_next_name(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with RunLock(Path("runs/same")) as lock:
        assert lock.acquire()
        r = train_cli("--data-root", data, *SMALL, "--epochs", 1, "--model-name", "same")
        assert r.exit_code == 0, r.output
        assert "run folder runs/same-2" in r.output
    assert (tmp_path / "runs/same-2/best.pth").is_file() and not (tmp_path / "runs/same/best.pth").exists()
    assert not (tmp_path / "runs/same-2/.lock").exists()


def test_a_stale_lock_is_taken_over(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / ".lock").write_text("pid=999999\nhost=elsewhere\nsince=yesterday\n")  # its flock is gone
    assert not in_use(out)
    with RunLock(out) as lock:
        assert lock.acquire()
        assert f"pid={os.getpid()}" in (out / ".lock").read_text()


def test_a_finished_run_is_not_written_over_without_exist_ok(data: Path, finished) -> None:
    out, _ = finished
    before = (out / "best.pth").stat().st_mtime_ns
    r = train_cli("--data-root", data, *SMALL, "--epochs", 1, "--output-dir", out)
    assert r.exit_code == 1
    line = _one_error_line(r.output)
    assert f"run folder {out} already holds a run" in line and "--exist-ok" in line and "--resume" in line
    assert (out / "best.pth").stat().st_mtime_ns == before


@pytest.mark.parametrize("name", ["../../x", "/tmp/abs", "a/b", ".."])
def test_a_model_name_is_a_name(data: Path, tmp_path: Path, name: str, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = train_cli("--data-root", data, *SMALL, "--model-name", name)
    assert r.exit_code == 1
    assert f"--model-name {name}: a run name, not a path" in _one_error_line(r.output)
    assert list(tmp_path.iterdir()) == []


# ---- config files cannot switch on code execution -----------------------------------------------
class _CreatesFile:
    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_trust_checkpoint_in_a_config_file_is_ignored(data: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned.txt"
    evil = tmp_path / "last.pth"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "model": _CreatesFile(marker)}, evil)
    config = tmp_path / "options.yaml"
    config.write_text(yaml.safe_dump({"trust_checkpoint": True, "epochs": 1}))
    r = train_cli(
        "--data-root", data, *SMALL, "--model", evil, "--config", config, "--output-dir", tmp_path / "o"
    )
    assert r.exit_code == 1 and not marker.exists()
    assert "trust_checkpoint ignored" in r.output
    assert "needs full unpickling" in _one_error_line(r.output)


def test_options_yaml_never_records_trust_checkpoint(finished) -> None:
    out, _ = finished
    saved = yaml.safe_load((out / "options.yaml").read_text())
    assert "trust_checkpoint" not in saved and saved["epochs"] == 1
    assert "trust_checkpoint" not in torch.load(out / "last.pth", weights_only=True)["options"]


def test_dataset_in_a_config_file_is_refused(data: Path, tmp_path: Path) -> None:
    (tmp_path / "mymod.py").write_text(f"open({str(tmp_path / 'ran.txt')!r}, 'w')\nclass D: pass\n")
    config = tmp_path / "c.yaml"
    config.write_text("dataset: mymod:D\nepochs: 1\n")
    r = train_cli("--data-root", data, *SMALL, "--config", config, "--output-dir", tmp_path / "o")
    assert r.exit_code == 1
    line = _one_error_line(r.output)
    assert "would import and run Python code" in line and "--dataset mymod:D" in line
    assert not (tmp_path / "ran.txt").exists() and not (tmp_path / "o").exists()


@pytest.mark.parametrize("spec", ["os:system", "builtins:exec", "os:sep"])
def test_dataset_must_be_a_dataset_class(data: Path, tmp_path: Path, spec: str) -> None:
    r = train_cli("--data-root", data, *SMALL, "--dataset", spec, "--output-dir", tmp_path / "o")
    assert r.exit_code == 1
    assert f"--dataset {spec}:" in _one_error_line(r.output) and "is not a class" in r.output
    assert not (tmp_path / "o").exists()


def test_dataset_help_says_it_runs_code() -> None:
    r = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert "IMPORTS AND RUNS" in r.output


# ---- full disk -----------------------------------------------------------------------------------
@pytest.fixture()
def small_disk(tmp_path: Path):
    """A 100 MiB tmpfs (root with mount rights only; else skipped)."""
    with tmpfs(tmp_path / "disk", "size=100m") as mnt:
        yield mnt


def test_a_full_disk_is_one_line_and_the_previous_checkpoint_stays(data: Path, small_disk: Path) -> None:
    """Epoch 1 fits (last.pth 52 MB + best.pth 17 MB); epoch 2's last.pth does not."""
    out = small_disk / "run"
    r = train_cli("--data-root", data, *SMALL, "--epochs", 2, "--output-dir", out)
    assert r.exit_code == 1, r.output
    line = _one_error_line(r.output)
    assert f"cannot write {out / 'last.pth'}: the disk is full" in line, line
    assert "previous file is unchanged" in line
    assert torch.load(out / "last.pth", weights_only=True)["train_state"]["epoch"] == 1
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


# ---- file modes ----------------------------------------------------------------------------------
def test_run_files_get_the_umask_mode_not_0600(finished) -> None:
    out, _ = finished
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in out.iterdir()}
    assert set(modes.values()) == {oct(0o640)}, modes  # 0666 less umask 027
    assert {"best.pth", "last.pth", "options.yaml", "metrics.csv", "curves.png"} <= set(modes)


@pytest.mark.parametrize("umask", [0o002, 0o077])
def test_atomic_writes_apply_the_umask_and_keep_an_existing_mode(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        new = atomic_write_text(tmp_path / "new.txt", "x")
        kept = tmp_path / "kept.txt"
        kept.write_text("old")
        kept.chmod(0o604)
        atomic_write_text(kept, "new")
    finally:
        os.umask(old)
    assert new.stat().st_mode & 0o777 == 0o666 & ~umask
    assert kept.stat().st_mode & 0o777 == 0o604 and kept.read_text() == "new"


# ---- bad values: one line, nothing written -------------------------------------------------------
@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--seed", "99999999999999999999"], "--seed 99999999999999999999: must be within 0..4294967295"),
        (["--seed", "-5"], "--seed -5: must be within"),
        (["--lr", "nan"], "--lr nan: expected a finite number"),
        (["--lr", "inf"], "--lr inf: expected a finite number"),
        (
            ["--num-classes", "1000", "--ignore-index", "255"],
            "--ignore-index 255 is a class id with 1000 classes",
        ),
    ],
)
def test_bad_flags_are_one_line(data: Path, tmp_path: Path, flags: list[str], expected: str) -> None:
    r = train_cli("--data-root", data, *SMALL, *flags, "--output-dir", tmp_path / "o")
    assert r.exit_code == 1 and expected in _one_error_line(r.output)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("epochs: abc", "epochs: 'abc': expected a whole number"),
        ("epochs: [1, 2]", "epochs: [1, 2]: expected a whole number"),
        ("lr: fast", "lr: 'fast': expected a number"),
        ("batch_size: 2.7", "batch_size: 2.7: expected a whole number"),
        ("epochs: .inf", "epochs: inf: expected a whole number"),
        ("lr: .nan", "lr: nan: expected a finite number"),
        ("amp: 3", "amp: 3: expected true or false"),
        ("size: [64, 6.5]", "expected a whole number in the list"),
        # range errors name the file and line too (issue 18), not only the option
        (
            "seed: 1000000000000000000000000000000",
            "c.yaml line 2: seed: 1000000000000000000000000000000: must be within",
        ),
        ("size: [0, 64]", "c.yaml line 2: size: [0, 64]: give WIDTH HEIGHT"),
    ],
)
def test_bad_config_values_are_one_line(data: Path, tmp_path: Path, text: str, expected: str) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"epochs: 1\n{text}\n")
    r = train_cli("--data-root", data, *SMALL, "--config", config, "--output-dir", tmp_path / "o")
    assert r.exit_code == 1 and expected in _one_error_line(r.output), r.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("key", ["batch_size", "batch-size"])
def test_a_config_value_of_a_flag_spelled_otherwise_names_the_file(key: str, tmp_path: Path) -> None:
    """batch_size is --batch: its refusal names the file, line and key it came from, not a flag
    never typed; typed, it is named by the flag."""
    config = tmp_path / "c.yaml"
    config.write_text(f"epochs: 1\n{key}: 0\n")
    root = tmp_path / "missing"
    r = train_cli("--data-root", root, "--config", config)
    assert (
        r.exit_code == 1
        and _one_error_line(r.output) == f"error: {config} line 2: {key}: 0: must be at least 1"
    )
    config.write_text("epochs: 1\n")
    r = train_cli("--data-root", root, "--config", config, "--batch_size", "0")
    assert r.exit_code == 1 and _one_error_line(r.output) == "error: --batch 0: must be at least 1"


def test_binary_config_and_class_map_are_one_line(data: Path, tmp_path: Path) -> None:
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00binary")
    r = train_cli("--data-root", data, *SMALL, "--config", blob, "--output-dir", tmp_path / "o")
    assert r.exit_code == 1 and f"{blob}: not a text (UTF-8) YAML file" in _one_error_line(r.output)
    r = train_cli("--data-root", data, *SMALL, "--class-map", blob, "--output-dir", tmp_path / "o")
    assert r.exit_code == 1 and f"--class-map {blob}: not a text (UTF-8) file" in _one_error_line(r.output)
    assert not (tmp_path / "o").exists()


def test_options_are_checked_when_built() -> None:
    with pytest.raises(ConfigError, match="--epochs 2.5: expected a whole number"):
        TrainOptions(data_root=Path("d"), epochs=2.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="--amp 'yes': expected true or false"):
        TrainOptions(data_root=Path("d"), amp="yes")  # type: ignore[arg-type]
    assert TrainOptions(data_root=Path("d"), num_classes=1000).ignore_index == 65535
    assert TrainOptions(data_root=Path("d"), num_classes=3).ignore_index == 255
    assert TrainOptions(data_root=Path("d"), lr=1).lr == 1  # an int is a number


def test_load_config_names_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("lr: 0.1\nepochs: abc\n")
    with pytest.raises(ConfigError, match=r"c\.yaml line 2: epochs: 'abc': expected a whole number"):
        load_config(config)


def test_a_thousand_classes_train_with_the_ignore_value_above_them(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    r = train_cli("--data-root", data, *SMALL, "--num-classes", "1000", "--epochs", 1, "--output-dir", out)
    assert r.exit_code == 0, r.output
    assert yaml.safe_load((out / "options.yaml").read_text())["ignore_index"] == 65535


# ---- silent and misleading results ---------------------------------------------------------------
def test_one_image_says_there_is_no_validation_data(tmp_path: Path) -> None:
    one = make_dataset(tmp_path / "one", count=1, size=(64, 64), num_classes=3, seed=1)
    out = tmp_path / "o"
    r = train_cli("--data-root", one, *SMALL, "--epochs", 1, "--output-dir", out)
    assert r.exit_code == 0, r.output
    assert "no validation data" in r.output and "lowest training loss" in r.output
    done = [ln for ln in r.output.splitlines() if ln.startswith("done:")]
    assert len(done) == 1 and "1 epoch trained" in done[0] and "best mIoU" not in done[0]
    assert "val_samples.png" not in done[0] and not (out / "val_samples.png").exists()
    assert "best.pth" in done[0] and (out / "best.pth").exists()


def test_done_line_lists_only_what_was_written(finished) -> None:
    out, r = finished
    done = [ln for ln in r.output.splitlines() if ln.startswith("done:")][0]
    assert "done: 1 epoch trained; best mIoU" in done
    for name in ("best.pth", "last.pth", "metrics.csv", "curves.png", "val_samples.png"):
        assert (name in done) == (out / name).exists(), name


def test_best_pth_is_for_deployment_and_last_pth_for_resuming(data: Path, finished, tmp_path: Path) -> None:
    out, _ = finished
    best = torch.load(out / "best.pth", weights_only=True)
    last = torch.load(out / "last.pth", weights_only=True)
    assert "optimizer" not in best["train_state"] and "optimizer" in last["train_state"]
    assert best["train_state"]["best_epoch"] == 1 and best["model_info"] == last["model_info"]
    assert (out / "best.pth").stat().st_size < 0.5 * (out / "last.pth").stat().st_size
    # starting from best.pth: a new run from its weights (said), not a resume
    r = train_cli(
        "--data-root",
        data,
        *SMALL,
        "--epochs",
        1,
        "--model",
        out / "best.pth",
        "--output-dir",
        tmp_path / "n",
    )
    assert r.exit_code == 0, r.output
    assert "holds no optimizer state" in r.output and (tmp_path / "n/best.pth").exists()


def test_resume_says_where_it_goes_on(data: Path, finished, tmp_path: Path) -> None:
    import shutil

    out = shutil.copytree(finished[0], tmp_path / "run")
    r = train_cli("--data-root", data, *SMALL, "--epochs", 2, "--output-dir", out, "--resume")
    assert r.exit_code == 0, r.output
    assert "going on at epoch 2 of 2" in r.output and "done: 2 epochs trained" in r.output
