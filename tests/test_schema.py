"""One declared schema (segpipe.schema) for everything read from a file: model descriptions (ONNX
metadata, checkpoint ``model_info``, the sidecar's metadata), engine sidecars and option files.

Every field wrong in type, out of range or oversized gives ONE line naming the file, the field and
the value; what segpipe writes reads back equal.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from file_fixtures import GOOD, good_sidecar, write_engine, write_onnx
from typer.testing import CliRunner

from segpipe.cli.app import app
from segpipe.errors import CheckpointError, ConfigError, SegpipeError
from segpipe.modelinfo import ModelInfo
from segpipe.options import EvaluateOptions, QuantizeOptions, TrainOptions, VisualizeOptions, load_config
from segpipe.schema.files import MAX_METADATA_BYTES, ModelInfoFile, SidecarFile
from segpipe.tensorrt.sidecar import read_sidecar, sidecar_model_info, write_sidecar

#: (field, bad value, words the message must hold besides the field and the value).
MODEL_INFO_CASES: list[tuple[str, Any, str]] = [
    ("arch", 5, "expected a text value"),
    ("arch", "", "must not be empty"),
    ("arch", "x" * 500, "longer than 100 characters"),
    ("encoder", ["resnet18"], "expected a text value"),
    ("num_classes", "four", "expected a whole number"),
    ("num_classes", 3.0, "expected a whole number"),
    ("num_classes", True, "expected a whole number"),
    ("num_classes", 0, "must be within 1..65535"),
    ("num_classes", 10**30, "must be within 1..65535"),
    ("in_channels", -3, "must be within"),
    ("mode", "panoptic", "use one of seg, binary or multilabel"),
    ("input_size", [64], "input_size"),
    ("input_size", [0, 64], "must be within 1..65536"),
    ("input_size", [10**6, 64], "must be within 1..65536"),
    ("input_size", "64x64", "expected a list"),
    ("mean", [0.5, "x", 0.5], "expected a number"),
    ("mean", [1e999, 0.5, 0.5], "expected a finite number"),
    ("mean", [0.5] * 5000, "at most 1024 entries"),
    ("std", [0.2, 0.0, 0.2], "must be above 0"),
    ("std", [0.2, -1, 0.2], "must be above 0"),
    ("class_names", ["bg", 7, "b"], "expected a text value"),
    ("class_names", ["bg", "a" * 300, "b"], "longer than 200 characters"),
    ("class_names", ["bg", "a"], "2 entries for 3 classes"),
    ("class_names", {"0": "bg"}, "expected a list"),
    ("colors", [[0, 0, 0], [300, 0, 0], [0, 0, 0]], "must be within 0..255"),
    ("colors", [[0, 0, 0], [-5, 0, 0], [0, 0, 0]], "must be within 0..255"),
    ("colors", [[0, 0], [1, 1, 1], [2, 2, 2]], "colors[0]"),
    ("colors", [[0, 0, 0]], "1 entry for 3 classes"),
    ("output_stride", 0, "must be within 1..1024"),
    ("output_stride", "32", "expected a whole number"),
    ("ignore_index", 70000, "must be within 0..65535"),
    ("layout", "HWC", "use one of NCHW or NHWC"),
    ("input_dtype", "float64", "use one of float32 or uint8"),
    ("precision", "fp64", "use one of fp32, fp16 or int8"),
    ("output_kind", "masks", "use one of logits, probs or labels"),
    ("min_side", -1, "must be within 0..65536"),
    ("segpipe_version", {"a": 1}, "expected a text value"),
]


def _one_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, text
    return lines[0]


@pytest.mark.parametrize(("field", "value", "words"), MODEL_INFO_CASES)
def test_every_model_info_field_is_checked_in_onnx_metadata(field: str, value: Any, words: str) -> None:
    props = {**GOOD.to_metadata(), f"segpipe.{field}": json.dumps(value)}
    with pytest.raises(CheckpointError) as err:
        ModelInfo.from_metadata(props, "m.onnx: metadata")
    msg = _one_line(str(err.value))
    assert msg.startswith("m.onnx: metadata") and field in msg and words in msg, msg
    assert len(msg) < 300


@pytest.mark.parametrize(("field", "value", "words"), MODEL_INFO_CASES[::3])
def test_every_model_info_field_is_checked_in_a_checkpoint(field: str, value: Any, words: str) -> None:
    data = {**GOOD.to_dict(), field: value}
    with pytest.raises(CheckpointError) as err:
        ModelInfo.from_dict(data, "c.pth: model_info")
    msg = _one_line(str(err.value))
    assert msg.startswith("c.pth: model_info") and field in msg and words in msg, msg


def test_missing_required_fields_and_unknown_keys() -> None:
    with pytest.raises(CheckpointError, match="c.pth: model_info encoder: missing"):
        ModelInfo.from_dict({"arch": "Unet", "num_classes": 3}, "c.pth: model_info")
    with pytest.raises(CheckpointError, match="c.pth: model_info: expected a mapping, got list"):
        ModelInfo.from_dict([1, 2], "c.pth: model_info")
    # unknown keys are ignored (forward compatibility), and never echoed
    extra = {**GOOD.to_dict(), "future_field": [1, 2, 3], "\x1b[2J": "x"}
    assert ModelInfo.from_dict(extra) == GOOD
    # ONNX metadata without a segpipe description is not an error
    assert ModelInfo.from_metadata({"producer": "x"}) is None


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ('"Unet', "not valid JSON"),
        ("", "not valid JSON"),
        ("[" * 100_000, "nested too deeply"),
        ("9" * 5000, "not valid JSON"),
        ('"' + "x" * (MAX_METADATA_BYTES + 10) + '"', "bytes, more than the"),
    ],
)
def test_malformed_metadata_json_is_one_line(raw: str, words: str) -> None:
    props = {**GOOD.to_metadata(), "segpipe.arch": raw}
    with pytest.raises(CheckpointError) as err:
        ModelInfo.from_metadata(props, "m.onnx: metadata")
    msg = _one_line(str(err.value))
    assert msg.startswith("m.onnx: metadata segpipe.arch") and words in msg and len(msg) < 300


def test_model_info_round_trips_through_every_writer(tmp_path: Path) -> None:
    info = GOOD.replace(precision="fp16", min_side=128, mean=(0.1, 0.2, 0.3), ignore_index=65535)
    assert ModelInfo.from_metadata(info.to_metadata()) == info
    assert ModelInfo.from_dict(info.to_file_dict()) == info
    # the writer refuses what the reader would: a description never written that cannot be read
    with pytest.raises(CheckpointError, match="model description output_stride 0: must be within"):
        info.replace(output_stride=0).to_metadata()
    engine = write_engine(tmp_path, good_sidecar())
    write_sidecar(engine, good_sidecar())
    read = read_sidecar(engine)
    assert read is not None and sidecar_model_info(read) == GOOD
    assert SidecarFile.model_validate(read).model_dump(mode="json") == read
    assert set(read) == set(SidecarFile.model_fields) and set(good_sidecar()) == set(SidecarFile.model_fields)
    assert set(ModelInfoFile.model_fields) == set(GOOD.to_dict())


def test_a_checkpoint_with_a_damaged_description_is_one_line(tmp_path: Path) -> None:
    import torch

    from segpipe.models import load_checkpoint

    path = tmp_path / "c.pth"
    torch.save({"format": "segpipe", "model_info": {**GOOD.to_dict(), "colors": [[0, 0, 300]] * 3}}, path)
    with pytest.raises(
        CheckpointError, match=r"c\.pth: model_info colors\[0\]\[2\] 300: must be within 0\.\.255"
    ):
        load_checkpoint(path)
    torch.save({"format": "segpipe", "model_info": GOOD.to_dict(), "state_dict": [1, 2]}, path)
    with pytest.raises(CheckpointError, match=r"c\.pth: state_dict is not a mapping of tensors"):
        load_checkpoint(path)
    res = CliRunner().invoke(app, ["info", str(path)])
    assert res.exit_code == 1 and "state_dict is not a mapping" in _one_line(res.output)


SIDECAR_CASES: list[tuple[str, Any, str]] = [
    ("format", 1, "expected a text value"),
    ("engine", "x" * 5000, "longer than 4096"),
    ("onnx", None, "expected a text value"),
    ("metadata", [1, 2], "expected a mapping"),
    ("metadata", {"segpipe.num_classes": 3}, "expected a text value"),
    ("tensorrt_version", 10, "expected a text value"),
    ("gpu_name", "NVIDIA \x1b]0;pwned\x07", "control characters"),
    ("compute_capability", ["9", "0"], "expected a text value"),
    ("precision", "fp64", "use one of fp32, fp16 or int8"),
    ("onnx_precision", 16, "use one of"),
    ("fp16_method", {"a": 1}, "expected a text value"),
    ("strongly_typed", "yes", "expected true or false"),
    ("profile", [1, 2], "expected a mapping"),
    (
        "profile",
        {"input_1": {"min": [1, 32], "opt": [1, 32, 32, 3], "max": [1, 32, 32, 3]}},
        "different numbers",
    ),
    ("profile", {"input_1": {"min": [2], "opt": [1], "max": [1]}}, "min <= opt <= max"),
    ("profile", {"input_1": {"min": [1], "opt": [1]}}, "max: missing"),
    ("profile", {"input_1": {"min": [-1], "opt": [1], "max": [1]}}, "must be within 0.."),
    ("inputs", [{"name": "input_1", "dtype": "float32", "dims": 5}], "expected a list"),
    ("inputs", [{"name": "input_1", "dtype": "float32", "dims": [1] * 20}], "at most 8 entries"),
    ("outputs", {"name": "output"}, "expected a list"),
    ("workspace_mib", "1024", "expected a whole number"),
    ("workspace_mib", -1, "must be within"),
    ("opt_level", 9, "must be within 0..5"),
    ("builder", 3.5, "expected a text value"),
    ("segpipe_version", [], "expected a text value"),
    ("created", 20260101, "expected a text value"),
]


@pytest.mark.parametrize(("field", "value", "words"), SIDECAR_CASES)
def test_every_sidecar_field_is_checked(tmp_path: Path, field: str, value: Any, words: str) -> None:
    engine = write_engine(tmp_path, {**good_sidecar(), field: value})
    with pytest.raises(CheckpointError) as err:
        read_sidecar(engine)
    msg = _one_line(str(err.value))
    assert msg.startswith(str(tmp_path / "m.engine.json")) and field in msg and words in msg, msg
    assert "\x1b" not in msg


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("{", "not valid JSON"),
        ("[1, 2]", "holds a list"),
        ("", "not valid JSON"),
        ("\xff\xfe", "not valid JSON"),
    ],
)
def test_malformed_sidecar_through_the_cli_is_one_line(tmp_path: Path, raw: str, words: str) -> None:
    engine = write_engine(tmp_path, raw=raw.encode("latin-1"))
    res = CliRunner().invoke(app, ["info", str(engine)])
    assert res.exit_code == 1, res.output
    msg = _one_line(res.output)
    assert "m.engine.json" in msg and words in msg


def test_sidecar_metadata_is_checked_like_onnx_metadata(tmp_path: Path) -> None:
    side = good_sidecar()
    side["metadata"] = {**side["metadata"], "segpipe.output_stride": "0"}
    engine = write_engine(tmp_path, side)
    res = CliRunner().invoke(app, ["info", str(engine)])
    assert res.exit_code == 1
    assert "m.engine.json: metadata output_stride 0: must be within 1..1024" in _one_line(res.output)


@pytest.mark.parametrize("cmd", ["info", "visualize"])
def test_onnx_readers_give_one_line_for_bad_metadata(tmp_path: Path, cmd: str) -> None:
    """``info`` (segpipe.info) and the ONNX Runtime runner (visualize) read metadata the same way."""
    model = write_onnx(tmp_path / "m.onnx", {**GOOD.to_metadata(), "segpipe.num_classes": '"four"'})
    args = ["info", str(model)]
    if cmd == "visualize":
        import numpy as np
        from PIL import Image

        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "a.png")
        args = ["visualize", "-i", str(tmp_path / "a.png"), "-m", str(model), "-o", str(tmp_path / "out")]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1, res.output
    assert f"{model}: metadata num_classes 'four': expected a whole number" in _one_line(res.output)


def test_a_good_tiny_onnx_reads_back(tmp_path: Path) -> None:
    model = write_onnx(tmp_path / "m.onnx", GOOD.to_metadata())
    res = CliRunner().invoke(app, ["info", str(model)])
    assert res.exit_code == 0, res.output
    assert "bg" in res.output and "Unet" in res.output


# ---- option files and options through the same mechanism ----------------------------------------


@pytest.mark.parametrize(
    ("cls", "text", "expected"),
    [
        (TrainOptions, "workers: '2'", "workers: '2': expected a whole number"),
        (TrainOptions, "class_names: [a, 3]", "expected a text value in the list"),
        (TrainOptions, "size: [64, 64, 3]", "size: [64, 64, 3]:"),
        (TrainOptions, "num_classes: 70000", "num_classes: 70000: at most 65535 classes"),
        (TrainOptions, "data_root: 5", "data_root: 5:"),
        (VisualizeOptions, "overlay: half", "overlay: 'half': expected a number"),
        (EvaluateOptions, "tta_scales: [1, x]", "expected a number in the list"),
        (QuantizeOptions, "seed: -1", "seed: -1: must be within 0..4294967295"),
    ],
)
def test_config_errors_name_file_line_key_and_value(
    tmp_path: Path, cls: type, text: str, expected: str
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"# options\n{text}\n")
    with pytest.raises(ConfigError) as err:
        load_config(cfg, cls)
    msg = _one_line(str(err.value))
    assert msg.startswith(f"{cfg} line 2: ") and expected in msg, msg


def test_options_keep_dataclass_behaviour() -> None:
    import dataclasses

    opts = TrainOptions(data_root="d", size=[64, 32], lr=1, class_names=["a", "b"])  # type: ignore[arg-type]
    assert opts.data_root == Path("d") and opts.size == (64, 32) and opts.class_names == ("a", "b")
    assert isinstance(opts.lr, float) and opts.lr == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.lr = 2  # type: ignore[misc]
    assert dataclasses.replace(opts, epochs=3).epochs == 3
    with pytest.raises(ConfigError, match="--epochs '3': expected a whole number"):
        dataclasses.replace(opts, epochs="3")
    with pytest.raises(ConfigError, match="--num-classes 70000: at most 65535 classes"):
        TrainOptions(data_root=Path("d"), num_classes=70000)
    with pytest.raises(ConfigError, match="--class-weights .*: give one weight from 0 to 1,000,000"):
        TrainOptions(data_root=Path("d"), class_weights="1,1e308")
    with pytest.raises(ConfigError, match=r"--model-name \\x1b\[2J: a run name"):
        TrainOptions(data_root=Path("d"), model_name="\x1b[2J")
    with pytest.raises(ConfigError, match="--seed -1: must be within"):
        VisualizeOptions(images=Path("i"), model=Path("m"), size=(64, 64)) and QuantizeOptions(
            model=Path("m"), calib_images=Path("c"), seed=-1
        )


def test_every_error_here_is_a_segpipe_error() -> None:
    assert issubclass(CheckpointError, SegpipeError) and issubclass(ConfigError, SegpipeError)


def test_top_level_help_and_version_do_not_import_pydantic() -> None:
    """The schema is imported when a file is read, never for ``segpipe --help`` / ``--version``
    (typer itself imports pydantic for some sub-command parameter types: not checked there)."""
    import subprocess
    import sys

    code = (
        "import sys\nfrom segpipe.cli.app import app\nimport typer.main\n"
        "for args in (['--help'], ['--version']):\n"
        "    try:\n"
        "        typer.main.get_command(app).main(args, prog_name='segpipe', standalone_mode=False)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print('PYDANTIC', 'pydantic' in sys.modules, 'segpipe.schema.files' in sys.modules)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "PYDANTIC False False" in res.stdout, res.stdout + res.stderr


# ---- messages of issue 18 that this schema work owns ---------------------------------------------


def test_class_weights_are_bounded_and_named_when_the_loss_overflows(tmp_path: Path) -> None:
    from segpipe.training.guard import nonfinite_message
    from segpipe.training.losses import read_class_weights

    weights = tmp_path / "w.txt"
    weights.write_text("1\n1e308\n")
    with pytest.raises(ConfigError, match=r"w\.txt line 2: weight 1e308 must be from 0 to 1,000,000"):
        read_class_weights(weights, 2)
    msg = nonfinite_message(1, 3, 10, 0.01, tmp_path / "last.pth", None, (1.0, 5000.0))
    assert "--class-weights up to 5000 multiply the loss" in msg and "--lr" in msg
    plain = nonfinite_message(1, 3, 10, 0.01, tmp_path / "last.pth", None, (1.0, 2.0))
    assert "try a lower --lr than 0.01" in plain and "class-weights up to" not in plain


def test_an_encoder_without_dilation_gets_alternatives_for_deeplab_and_pan() -> None:
    from segpipe.models import create_model

    with pytest.raises(ConfigError) as err:
        create_model(GOOD.replace(arch="DeepLabV3Plus", encoder="tu-efficientvit_b0", layout="NCHW"))
    msg = str(err.value)
    assert "use tu-efficientvit_b0 with Unet, FPN" in msg and "DeepLabV3Plus with an encoder that can" in msg


def test_the_class_limit_is_stated_as_it_is() -> None:
    from segpipe.options import check_ignore_index

    with pytest.raises(ConfigError, match="--num-classes 70000: at most 65535 classes"):
        check_ignore_index(65535, 70000)
    with pytest.raises(ConfigError, match=r"pass --ignore-index 65535 \(the only value left\)"):
        check_ignore_index(255, 65535)
