"""``segpipe deepstream``: every key and value of the nvinfer config passes gst-nvinfer 9.1's rules
(tests/nvinfer_rules.py), and nvinfer's documented pre-processing and segmentation parser, applied
with the values read from the written config, give ``segpipe visualize``'s class map."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import urllib.parse
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from deploy_helpers import SIZE, fake_engine, frames, make_models
from nvinfer_rules import check_nvinfer_config

from segpipe.deploy.deepstream import write_deepstream
from segpipe.deploy.model import read_model_file
from segpipe.errors import ConfigError

W, H = SIZE


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_models(tmp_path_factory.mktemp("ds_models"))


@pytest.fixture(scope="module")
def written(models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``segpipe deepstream`` run as a user runs it, on the dynamic probabilities model."""
    out = tmp_path_factory.mktemp("ds_out")
    run = subprocess.run(
        [sys.executable, "-m", "segpipe", "deepstream", "-m", str(models["probs"]), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    return out


def nvinfer_preprocess(frame: np.ndarray, cfg: dict) -> np.ndarray:
    """nvinfer's input for an RGB uint8 frame already at the network size: colour order
    (model-color-format), ``y = net-scale-factor * (x - offsets[c])`` in float32, planar (order 0) or
    interleaved (order 1), batch of one."""
    x = frame.astype(np.float32)
    x = {0: x, 1: x[..., ::-1], 2: x.mean(axis=-1, keepdims=True)}[cfg.get("model-color-format", 0)]
    offsets = np.zeros(x.shape[-1], np.float32)
    given = np.asarray(cfg.get("offsets", []), np.float32)
    offsets[: len(given)] = given
    y = np.float32(cfg.get("net-scale-factor", 1.0)) * (x - offsets)
    if cfg.get("network-input-order", 0) == 0:
        y = y.transpose(2, 0, 1)
    return np.ascontiguousarray(y[None], dtype=np.float32)


def nvinfer_parse(output: np.ndarray, cfg: dict) -> np.ndarray:
    """nvinfer's default semantic-segmentation parser: per pixel the first class whose value is the
    largest of those above segmentation-threshold, -1 where none is (C x H x W, order 0)."""
    assert cfg.get("segmentation-output-order", 0) == 0
    probs = output[0]
    assert probs.shape[0] == cfg["num-detected-classes"]  # the parser's own check
    above = np.where(probs > cfg.get("segmentation-threshold", 0.0), probs, -np.inf)
    cls = above.argmax(axis=0)
    return np.where(np.isfinite(above.max(axis=0)), cls, -1)


def test_every_key_and_value_passes_nvinfer_rules(written: Path, models: dict[str, Path]) -> None:
    config = written / "config_infer_primary_probs.txt"
    cfg = check_nvinfer_config(config)
    out_dims = [
        d.dim_value or d.dim_param
        for d in onnx.load(str(models["probs"])).graph.output[0].type.tensor_type.shape.dim
    ]
    assert cfg["network-type"] == 2
    assert cfg["num-detected-classes"] == out_dims[1] == 3
    assert cfg["infer-dims"] == [3, H, W]
    assert cfg["network-input-order"] == 1 and cfg["model-color-format"] == 0  # NHWC RGB, as exported
    assert cfg["net-scale-factor"] == 1.0 and cfg["offsets"] == [0.0, 0.0, 0.0]  # the graph normalises
    assert (written / cfg["onnx-file"]).read_bytes() == models["probs"].read_bytes()
    assert (written / cfg["labelfile-path"]).read_text().splitlines() == ["ground", "thing", "sky"]
    assert cfg["output-blob-names"] == ["output"]
    script = (written / "deepstream_pipeline.sh").read_text()
    assert f'nvinfer config-file-path="$HERE/{config.name}"' in script
    assert subprocess.run(["sh", "-n", str(written / "deepstream_pipeline.sh")]).returncode == 0


def test_nvinfer_preprocessing_gives_visualize_class_map(
    written: Path, models: dict[str, Path], tmp_path: Path
) -> None:
    cfg = check_nvinfer_config(written / "config_infer_primary_probs.txt")
    images = frames(3, seed=7)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, img in enumerate(images):
        cv2.imwrite(str(folder / f"f{i}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    out = tmp_path / "vis"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "segpipe",
            "visualize",
            "-m",
            str(models["probs"]),
            "-i",
            str(folder),
            "-o",
            str(out),
            "--save-labels",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    session = ort.InferenceSession(str(written / cfg["onnx-file"]), providers=["CPUExecutionProvider"])
    classes_seen = set()
    for i, img in enumerate(images):
        (probs,) = session.run(None, {"input_1": nvinfer_preprocess(img, cfg)})
        ds_map = nvinfer_parse(probs, cfg)
        vis = cv2.imread(str(out / f"f{i}_labels.png"), cv2.IMREAD_UNCHANGED)
        assert vis.shape == ds_map.shape == (H, W)
        assert (ds_map >= 0).all()  # threshold 0: every pixel gets a class
        np.testing.assert_array_equal(ds_map, vis)
        classes_seen |= set(np.unique(vis).tolist())
    assert len(classes_seen) > 1  # the comparison is between maps with several classes


def test_normalising_outside_as_well_would_be_caught(written: Path, models: dict[str, Path]) -> None:
    """What the config avoids: the checkpoint's normalisation in net-scale-factor/offsets on top of
    the graph's. The pre-processing test above would see it (different probabilities)."""
    info = read_model_file(models["probs"]).info
    good = check_nvinfer_config(written / "config_infer_primary_probs.txt")
    twice = dict(
        good,
        **{"net-scale-factor": 1 / (255 * float(np.mean(info.std))), "offsets": [255 * m for m in info.mean]},
    )
    session = ort.InferenceSession(str(models["probs"]), providers=["CPUExecutionProvider"])
    img = frames(1, seed=1)[0]
    (a,) = session.run(None, {"input_1": nvinfer_preprocess(img, good)})
    (b,) = session.run(None, {"input_1": nvinfer_preprocess(img, twice)})
    assert not np.allclose(a, b, atol=1e-3)


def test_engine_and_fixed_batch_configs_pass_the_rules(models: dict[str, Path], tmp_path: Path) -> None:
    engine = fake_engine(tmp_path, models["probs"], max_batch=4)
    result = write_deepstream(read_model_file(engine), tmp_path / "eng", batch_size=4)
    cfg = check_nvinfer_config(result.config)
    assert cfg["model-engine-file"] == "probs.engine" and "onnx-file" not in cfg
    assert cfg["batch-size"] == 4 and cfg["network-mode"] == 2  # the engine's FP16
    fixed = check_nvinfer_config(write_deepstream(read_model_file(models["fixed"]), tmp_path / "fx").config)
    assert fixed["batch-size"] == 1 and fixed["infer-dims"] == [3, H, W]
    with pytest.raises(ConfigError, match="--batch 8: .* takes 1 to 4"):
        write_deepstream(read_model_file(engine), tmp_path / "eng8", batch_size=8)


@pytest.mark.parametrize(
    "line, problem",
    [
        ("segmentation-treshold=0.5", "unknown key"),
        ("network-type=2 # segmentation", "not an integer"),
        ("network-input-order=2", "accepts [0, 1]"),
        ("offsets=1;2;3;4;5", "range check"),
        ("segmentation-threshold=-0.1", "range check"),
    ],
)
def test_checker_refuses_what_nvinfer_refuses(written: Path, tmp_path: Path, line: str, problem: str) -> None:
    text = (written / "config_infer_primary_probs.txt").read_text()
    key = line.split("=")[0]
    kept = [ln for ln in text.splitlines() if not ln.startswith(key + "=")]
    bad = tmp_path / "bad.txt"
    bad.write_text("\n".join([*kept, line]) + "\n")
    with pytest.raises(ValueError, match=re.escape(problem)):
        check_nvinfer_config(bad)


@pytest.mark.parametrize(
    "kind, words",
    [
        ("logits", "outputs logits (negative ones never pass its threshold)"),
        ("labels", "outputs a class map"),
    ],
)
def test_models_nvinfer_cannot_parse_are_refused(
    models: dict[str, Path], tmp_path: Path, kind: str, words: str
) -> None:
    with pytest.raises(ConfigError) as err:
        write_deepstream(read_model_file(models[kind]), tmp_path)
    assert words in str(err.value) and "--output-kind probs" in str(err.value)
    assert not list(tmp_path.iterdir())  # nothing written


def test_a_refused_model_leaves_no_output_folder(models: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="outputs logits"):
        write_deepstream(read_model_file(models["logits"]), tmp_path / "new" / "deepstream")
    assert not (tmp_path / "new").exists()


def test_hostile_model_and_folder_names_stay_names(models: dict[str, Path], tmp_path: Path) -> None:
    """A model named like a shell command substitution (with a newline) and an output folder with
    spaces: the pipeline script runs nothing but gst-launch-1.0, whose config-file-path is the
    written config, whose onnx-file is the copied model; no line of the config is split."""
    hostile = tmp_path / "in" / "a$(touch PWNED) `touch PWNED2`\nb.onnx"
    hostile.parent.mkdir()
    hostile.write_bytes(models["probs"].read_bytes())
    out = tmp_path / "out $(touch PWNED3) dir"
    result = write_deepstream(read_model_file(hostile), out)
    cfg = check_nvinfer_config(result.config)
    assert (out / cfg["onnx-file"]).is_file()
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "gst-launch-1.0").write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done > "$ARGS"\n')
    (fake / "gst-launch-1.0").chmod(0o755)
    video = tmp_path / "v.mp4"
    video.write_bytes(b"")
    env = {"PATH": f"{fake}:/usr/bin:/bin", "ARGS": str(tmp_path / "args.txt")}
    run = subprocess.run(
        ["sh", str(result.pipeline), str(video), str(tmp_path / "o.mp4")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert not list(tmp_path.rglob("PWNED*"))
    args = (tmp_path / "args.txt").read_text().splitlines()
    given = next(a for a in args if a.startswith("config-file-path="))
    assert Path(given.split("=", 1)[1]).resolve() == result.config.resolve()


def test_a_second_model_into_the_same_folder_is_refused(models: dict[str, Path], tmp_path: Path) -> None:
    """labels.txt and deepstream_pipeline.sh are shared names: a second model's would have turned the
    first model's config into one with the wrong labels."""
    first = write_deepstream(read_model_file(models["probs"]), tmp_path / "ds")
    before = {p.name: p.read_bytes() for p in (tmp_path / "ds").iterdir()}
    write_deepstream(read_model_file(models["probs"]), tmp_path / "ds")  # the same model again: fine
    with pytest.raises(
        ConfigError, match=r"holds the DeepStream files of another model \(config_infer_primary_probs"
    ):
        write_deepstream(read_model_file(models["fixed"]), tmp_path / "ds")
    assert {p.name: p.read_bytes() for p in (tmp_path / "ds").iterdir()} == before
    assert first.config.is_file()


VIDEO_NAMES = [
    "my video.mp4",
    "vidéo 日本語.mp4",
    "100% done.mp4",
    "%41%2F.mp4",  # already looks percent-encoded: must come back as these characters
    "take #2?x=1.mp4",
    ":x:.mp4",
    'it\'s "quoted" !.mp4',
]


def _run_pipeline(script: Path, video: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """The pipeline script run with a gst-launch-1.0 that records its arguments, one a line."""
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    (fake / "gst-launch-1.0").write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done > "$ARGS"\n')
    (fake / "gst-launch-1.0").chmod(0o755)
    if not (fake / "python3").exists():
        (fake / "python3").symlink_to(sys.executable)
    env = {"PATH": f"{fake}:/usr/bin:/bin", "ARGS": str(tmp_path / "args.txt"), "LC_ALL": "C.UTF-8"}
    return subprocess.run(["sh", str(script), video], cwd=tmp_path, env=env, capture_output=True, timeout=60)


@pytest.mark.parametrize("name", [n.encode() for n in VIDEO_NAMES] + [b"latin1 \xe9t\xe9.mp4"])
def test_the_video_uri_is_percent_encoded(models: dict[str, Path], tmp_path: Path, name: bytes) -> None:
    """uridecodebin reads a URI: the script's is the video's absolute path, percent-encoded (spaces,
    '#', '%', '?', ':', quotes, non-ASCII, non-UTF-8 bytes), and parses back to that path."""
    result = write_deepstream(read_model_file(models["probs"]), tmp_path / "ds")
    (tmp_path / "videos").mkdir()
    video = os.path.join(os.fsencode(tmp_path / "videos"), name)
    with open(video, "wb"):
        pass
    run = _run_pipeline(result.pipeline, os.fsdecode(b"videos/" + name), tmp_path)
    assert run.returncode == 0, run.stderr
    args = (tmp_path / "args.txt").read_bytes().splitlines()
    uri = next(a for a in args if a.startswith(b"uri=")).split(b"=", 1)[1].decode("ascii")
    assert re.fullmatch(r"file:///[A-Za-z0-9._~/%-]+", uri), uri  # nothing left for a parser to read
    parts = urllib.parse.urlsplit(uri)
    assert (parts.scheme, parts.netloc, parts.query, parts.fragment) == ("file", "", "", "")
    assert urllib.parse.unquote_to_bytes(parts.path) == os.path.realpath(video)


def test_a_missing_video_is_one_line(models: dict[str, Path], tmp_path: Path) -> None:
    result = write_deepstream(read_model_file(models["probs"]), tmp_path / "ds")
    run = _run_pipeline(result.pipeline, "no such.mp4", tmp_path)
    assert run.returncode == 1
    assert run.stderr.decode().strip().endswith("no such.mp4: no such video file")
    assert not (tmp_path / "args.txt").exists()


def _gstreamer_decodes_avi() -> bool:
    inspect = shutil.which("gst-inspect-1.0")
    return bool(shutil.which("gst-launch-1.0") and inspect) and all(
        subprocess.run([inspect, "--exists", e], capture_output=True).returncode == 0  # type: ignore[list-item]
        for e in ("uridecodebin", "avidemux", "jpegdec", "fakesink")
    )


@pytest.mark.skipif(not _gstreamer_decodes_avi(), reason="GStreamer with base and good plugins not installed")
def test_real_uridecodebin_opens_the_scripts_uri(models: dict[str, Path], tmp_path: Path) -> None:
    """The URI the script builds, given to GStreamer's own uridecodebin (a real gst-launch-1.0 in
    place of the DeepStream elements): every frame decodes, for names the plain file:// URI lost
    ('%', '#', '?', non-UTF-8 bytes: 'Could not open resource' / 'Resource not found')."""
    result = write_deepstream(read_model_file(models["probs"]), tmp_path / "ds")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "gst-launch-1.0").write_text(
        '#!/bin/sh\nfor a in "$@"; do case "$a" in uri=*) U="$a";; esac; done\n'
        f'exec {shutil.which("gst-launch-1.0")} -q uridecodebin "$U" ! fakesink\n'
    )
    (fake / "gst-launch-1.0").chmod(0o755)
    (fake / "python3").symlink_to(sys.executable)
    folder = os.fsencode(tmp_path / "videos")
    os.mkdir(folder)
    for name in (b"100% take #2?x=1.avi", b"latin1 \xe9t\xe9.avi"):
        writer = cv2.VideoWriter(str(tmp_path / "v.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 5, (W, H))
        for i in range(3):
            writer.write(np.full((H, W, 3), 40 * i, np.uint8))
        writer.release()
        os.rename(tmp_path / "v.avi", os.path.join(folder, name))
        run = subprocess.run(
            ["sh", str(result.pipeline), os.path.join(folder, name)],
            env={"PATH": f"{fake}:/usr/bin:/bin", "LC_ALL": "C.UTF-8"},
            capture_output=True,
            timeout=60,
        )
        assert run.returncode == 0, (name, run.stdout[-500:], run.stderr[-500:])
