"""What a small file can make segpipe allocate is bounded: YAML aliases (billion laughs), palette ids,
sidecar and metadata sizes. The readers run in a child process under an address-space limit, so a
regression fails the test (MemoryError, a killed child) instead of taking the machine down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from file_fixtures import GOOD, good_sidecar, write_engine

from segpipe.errors import CheckpointError, ConfigError
from segpipe.palette import load_palette
from segpipe.schema.files import MAX_SIDECAR_BYTES
from segpipe.tensorrt.sidecar import read_sidecar

ROOT = Path(__file__).resolve().parents[1]

#: 9 levels of 9 aliases under a real option: 9**9 (387 million) names from a file under 800 bytes.
LAUGHS = "\n".join(
    ["epochs: 1", "class_names:", "  - &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"  - &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
)


def run_limited(code: str, limit_mb: int = 1500, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a child Python with RLIMIT_AS = ``limit_mb`` (this tree first on sys.path)."""
    prelude = textwrap.dedent(
        f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, ({limit_mb} << 20, {limit_mb} << 20))
        sys.path.insert(0, {str(ROOT)!r})
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_billion_laughs_config_is_one_line_quickly_under_a_memory_limit(tmp_path: Path) -> None:
    cfg = tmp_path / "laughs.yaml"
    cfg.write_text(LAUGHS)
    assert cfg.stat().st_size < 800
    start = time.perf_counter()
    res = run_limited(
        f"""
        from segpipe.errors import SegpipeError
        from segpipe.options import TrainOptions, load_config
        try:
            load_config({str(cfg)!r}, TrainOptions)
        except SegpipeError as e:
            print("ERROR", e)
        """
    )
    assert time.perf_counter() - start < 30
    assert res.returncode == 0, res.stderr[-2000:]
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ERROR {cfg}: refused, its anchors and aliases expand")


def test_billion_laughs_through_the_cli(tmp_path: Path) -> None:
    cfg = tmp_path / "laughs.yaml"
    cfg.write_text(LAUGHS)
    res = run_limited(
        f"""
        import sys
        from segpipe.cli.app import main
        sys.argv = ["segpipe", "train", "--data-root", {str(tmp_path)!r}, "--config", {str(cfg)!r}]
        main()
        """,
        limit_mb=6000,
        timeout=120,
    )
    assert res.returncode == 1, res.stderr[-2000:]
    lines = [ln for ln in (res.stdout + res.stderr).splitlines() if ln.strip()]
    assert len(lines) == 1 and "refused, its anchors and aliases expand" in lines[0], lines


def test_a_few_aliases_are_still_fine(tmp_path: Path) -> None:
    from segpipe.options import TrainOptions, load_config

    cfg = tmp_path / "c.yaml"
    cfg.write_text("size: &s [64, 32]\nepochs: 2\n")
    assert load_config(cfg, TrainOptions) == {"size": (64, 32), "epochs": 2}
    cfg.write_text("a: &a [*a]\n")
    with pytest.raises(ConfigError, match="an alias refers to a node that contains it"):
        load_config(cfg, TrainOptions)


def test_an_oversized_config_is_refused_before_parsing(tmp_path: Path) -> None:
    from segpipe.options import TrainOptions, load_config

    cfg = tmp_path / "c.yaml"
    cfg.write_text("# " + "x" * (2 << 20) + "\nepochs: 1\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: \d+ bytes, more than the 1048576"):
        load_config(cfg, TrainOptions)


@pytest.mark.parametrize("cid", ["99999999999999999999", "65536", "-1", "1" * 5000])
def test_huge_palette_id_is_one_line_under_a_memory_limit(tmp_path: Path, cid: str) -> None:
    csv = tmp_path / "colors.csv"
    csv.write_text(f"id,name,r,g,b\n0,bg,0,0,0\n{cid},x,1,2,3\n")
    res = run_limited(
        f"""
        from segpipe.errors import SegpipeError
        from segpipe.palette import load_palette
        try:
            load_palette({str(csv)!r})
        except SegpipeError as e:
            print("ERROR", e)
        """,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ERROR {csv} line 3:"), lines


def test_palette_gap_message_is_bounded(tmp_path: Path) -> None:
    csv = tmp_path / "colors.csv"
    csv.write_text("id,name,r,g,b\n0,bg,0,0,0\n65535,x,1,2,3\n")
    with pytest.raises(
        ConfigError, match=r"class ids must be 0\.\.1 without gaps; missing \[1, 2, 3, 4, 5\]"
    ):
        load_palette(csv)


def test_oversized_sidecar_is_refused_before_reading(tmp_path: Path) -> None:
    side = good_sidecar()
    side["created"] = "x" * (MAX_SIDECAR_BYTES + 1)
    engine = write_engine(tmp_path, side)
    with pytest.raises(
        CheckpointError, match=rf"m\.engine\.json: \d+ bytes, more than the {MAX_SIDECAR_BYTES}"
    ):
        read_sidecar(engine)


def test_many_metadata_entries_are_refused(tmp_path: Path) -> None:
    side = good_sidecar()
    side["metadata"] = {**GOOD.to_metadata(), **{f"k{i}": "v" for i in range(1000)}}
    engine = write_engine(tmp_path, side)
    with pytest.raises(CheckpointError, match=r"m\.engine\.json metadata .*: at most 256 entries"):
        read_sidecar(engine)


def test_deep_json_in_a_sidecar_is_one_line(tmp_path: Path) -> None:
    engine = write_engine(tmp_path, raw='{"profile": ' + "[" * 200_000 + "]" * 200_000 + "}")
    with pytest.raises(CheckpointError, match=r"m\.engine\.json: JSON nested too deeply"):
        read_sidecar(engine)
    assert json.loads(json.dumps(good_sidecar()))  # the fixture itself is plain JSON


def test_billion_laughs_augmentation_pipeline_is_one_line(tmp_path: Path) -> None:
    from segpipe.data.augment import load_pipeline

    aug = tmp_path / "aug.yaml"
    aug.write_text(LAUGHS.replace("class_names:", "transform:"))
    with pytest.raises(ConfigError, match=r"aug\.yaml: refused, its anchors and aliases expand"):
        load_pipeline(aug)


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-3", "lots"])
@pytest.mark.parametrize("env", ["SEGPIPE_MAX_LABEL_MB", "SEGPIPE_MAX_IMAGE_MPIX"])
def test_a_label_limit_from_the_environment_is_a_positive_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: str, value: str
) -> None:
    from segpipe.data.formats._annotations import check_image_size, read_json
    from segpipe.errors import DataError

    label = tmp_path / "a.json"
    label.write_text("{}")
    monkeypatch.setenv(env, value)
    with pytest.raises(
        DataError, match=rf"^environment variable {env}='{value}' (is not a number|must be > 0)$"
    ):
        read_json(label) if env == "SEGPIPE_MAX_LABEL_MB" else check_image_size(10, 10, "a.json")
    monkeypatch.setenv(env, "2.5")
    assert read_json(label) == {} and check_image_size(10, 10, "a.json") == (10, 10)


def test_a_malformed_dataset_yaml_is_one_line_naming_the_line(tmp_path: Path) -> None:
    from segpipe.data.formats.ultralytics import load_config
    from segpipe.errors import DataError

    cfg = tmp_path / "data.yaml"
    cfg.write_text("path: .\ntrain: images/train\nnames: [a, b\n")
    with pytest.raises(DataError, match=r"data\.yaml line \d+: malformed YAML \(.+\)$") as exc:
        load_config(cfg)
    assert "\n" not in str(exc.value)
    cfg.write_text(LAUGHS)
    with pytest.raises(DataError, match=r"data\.yaml: refused, its anchors and aliases expand"):
        load_config(cfg)
