"""``segpipe triton``: every config.pbtxt parses strictly into Triton's own ModelConfig (tritonclient)
and its tensors, types and batching equal the model file's, read here straight from the ONNX graph."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from deploy_helpers import SIZE, fake_engine, make_models

pytest.importorskip("tritonclient.grpc.model_config_pb2")
from google.protobuf import text_format  # noqa: E402
from tritonclient.grpc import model_config_pb2 as mc  # noqa: E402

from segpipe.deploy.model import read_model_file  # noqa: E402
from segpipe.deploy.triton import check_config, parse_config, write_triton_repo  # noqa: E402
from segpipe.errors import ConfigError, SegpipeError  # noqa: E402

W, H = SIZE


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_models(tmp_path_factory.mktemp("deploy_models"))


def strict(path: Path) -> mc.ModelConfig:
    """Triton's parser of config.pbtxt, as strict as the server: an unknown field raises."""
    return text_format.Parse(path.read_text(encoding="utf-8"), mc.ModelConfig())


def graph_dims(path: Path) -> tuple[list[int], list[int], int, int]:
    """(input dims, output dims, input elem type, output elem type) of the ONNX graph; -1 for a
    named (dynamic) axis."""
    g = onnx.load(str(path)).graph
    dims = [
        [d.dim_value if d.dim_value > 0 else -1 for d in v.type.tensor_type.shape.dim]
        for v in (g.input[0], g.output[0])
    ]
    return dims[0], dims[1], g.input[0].type.tensor_type.elem_type, g.output[0].type.tensor_type.elem_type


def test_dynamic_batch_onnx(models: dict[str, Path], tmp_path: Path) -> None:
    result = write_triton_repo(
        read_model_file(models["probs"]), tmp_path / "repo", name="seg", max_batch_size=6
    )
    cfg = strict(tmp_path / "repo" / "seg" / "config.pbtxt")
    in_dims, out_dims, in_t, out_t = graph_dims(models["probs"])
    assert cfg.name == "seg" and cfg.backend == "onnxruntime"
    assert cfg.max_batch_size == 6 and cfg.HasField("dynamic_batching")
    assert in_dims[0] == -1  # the model's batch axis is dynamic: Triton's dims leave it out
    assert list(cfg.input[0].dims) == in_dims[1:] == [-1, -1, 3]
    assert list(cfg.output[0].dims) == out_dims[1:] == [3, -1, -1]
    assert cfg.input[0].name == "input_1" and cfg.output[0].name == "output"
    assert (in_t, out_t) == (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT)
    assert cfg.input[0].data_type == mc.TYPE_FP32 and cfg.output[0].data_type == mc.TYPE_FP32
    assert (result.model_dir / "1" / "model.onnx").read_bytes() == models["probs"].read_bytes()
    assert cfg.output[0].label_filename == "labels.txt"
    assert (result.model_dir / "labels.txt").read_text().splitlines() == ["ground", "thing", "sky"]


def test_fixed_batch_gets_no_batching(models: dict[str, Path], tmp_path: Path) -> None:
    result = write_triton_repo(read_model_file(models["fixed"]), tmp_path, name="fixed")
    cfg = strict(result.config)
    in_dims, out_dims, _, _ = graph_dims(models["fixed"])
    assert cfg.max_batch_size == 0 and not cfg.HasField("dynamic_batching")
    assert list(cfg.input[0].dims) == in_dims == [1, H, W, 3]
    assert list(cfg.output[0].dims) == out_dims == [1, 3, H, W]
    assert any("--dynamic-batch" in n for n in result.notes)


def test_uint8_class_map_types(models: dict[str, Path], tmp_path: Path) -> None:
    cfg = strict(write_triton_repo(read_model_file(models["labels"]), tmp_path).config)
    _, out_dims, in_t, out_t = graph_dims(models["labels"])
    assert (in_t, out_t) == (onnx.TensorProto.UINT8, onnx.TensorProto.INT64)
    assert cfg.input[0].data_type == mc.TYPE_UINT8 and cfg.output[0].data_type == mc.TYPE_INT64
    assert list(cfg.output[0].dims) == out_dims[1:] == [-1, -1]


def test_engine_is_a_tensorrt_plan_capped_by_its_profile(models: dict[str, Path], tmp_path: Path) -> None:
    engine = fake_engine(tmp_path, models["probs"], max_batch=4)
    result = write_triton_repo(read_model_file(engine), tmp_path / "repo", max_batch_size=16)
    cfg = strict(result.config)
    assert cfg.backend == "tensorrt" and cfg.default_model_filename == "model.plan"
    assert result.model == tmp_path / "repo" / "probs" / "1" / "model.plan"
    assert cfg.max_batch_size == 4  # the profile's max batch, not the 16 asked for
    assert [g.kind for g in cfg.instance_group] == [mc.ModelInstanceGroup.KIND_GPU]


def test_strict_parse_refuses_unknown_fields_in_one_line(models: dict[str, Path], tmp_path: Path) -> None:
    config = write_triton_repo(read_model_file(models["probs"]), tmp_path).config
    text = config.read_text() + "max_batch: 4\n"  # a field ModelConfig does not have
    with pytest.raises(SegpipeError) as err:
        parse_config(text, str(config))
    assert "max_batch" in str(err.value) and "\n" not in str(err.value)


def test_check_catches_dims_out_of_step(models: dict[str, Path], tmp_path: Path) -> None:
    found = read_model_file(models["probs"])
    cfg = strict(write_triton_repo(found, tmp_path).config)
    cfg.output[0].dims[0] = 4  # four classes for a three-class model
    with pytest.raises(
        SegpipeError, match=r"output output dims \[4, -1, -1\], the model's are \[3, -1, -1\]"
    ):
        check_config(cfg, found, "config.pbtxt")


@pytest.mark.parametrize(
    "args, expected",
    [
        (["-m", "{ckpt}"], "not .pth (export it first: segpipe export-onnx)"),
        (["-m", "{probs}", "--name", "../up"], "--name '../up': a Triton model name"),
        (["-m", "{probs}", "--max-batch", "0"], "--max-batch 0: must be at least 1"),
    ],
)
def test_cli_errors_are_one_line(
    models: dict[str, Path], tmp_path: Path, args: list[str], expected: str
) -> None:
    ckpt = tmp_path / "m.pth"
    ckpt.write_bytes(b"x")
    argv = [a.format(ckpt=ckpt, probs=models["probs"]) for a in args]
    run = subprocess.run(
        [sys.executable, "-m", "segpipe", "triton", *argv, "-o", str(tmp_path / "repo")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1
    assert expected in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert "Traceback" not in run.stderr


def test_no_metadata_is_refused(models: dict[str, Path], tmp_path: Path) -> None:
    proto = onnx.load(str(models["probs"]))
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, str(bare))
    with pytest.raises(SegpipeError, match="no segpipe metadata"):
        read_model_file(bare)


def _tritonserver() -> list[str] | None:
    """A Triton server command: ``SEGPIPE_TRITONSERVER`` (a command line, e.g. ``env
    LD_LIBRARY_PATH=... /path/tritonserver --backend-directory=...``) or ``tritonserver`` on PATH."""
    import os
    import shlex
    import shutil

    given = os.environ.get("SEGPIPE_TRITONSERVER")
    if given:
        return shlex.split(given)
    found = shutil.which("tritonserver")
    return [found] if found else None


@pytest.mark.skipif(_tritonserver() is None, reason="no Triton server (set SEGPIPE_TRITONSERVER)")
def test_tritonserver_reads_the_repository(models: dict[str, Path], tmp_path: Path) -> None:
    """The real server parses every written config.pbtxt (strictly: --disable-auto-complete-config)
    and loads the models; where its onnxruntime backend is missing (PyTriton's bundled server ships
    only the python backend) loading stops there, after the configs were read."""
    repo = tmp_path / "repo"
    for key in ("probs", "fixed"):
        write_triton_repo(read_model_file(models[key]), repo)
    ports = []
    for _ in range(2):  # free loopback ports (tritonserver takes no port 0)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
    cmd = [
        *_tritonserver(),
        f"--model-repository={repo}",
        "--disable-auto-complete-config",
        "--http-address=127.0.0.1",
        f"--http-port={ports[0]}",
        "--grpc-address=127.0.0.1",
        f"--grpc-port={ports[1]}",
        "--allow-metrics=false",
        "--exit-on-error=true",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    loaded, log = set(), []
    try:
        for line in proc.stdout:
            log.append(line)
            m = re.search(r"successfully loaded '(\w+)'", line)
            if m:
                loaded.add(m.group(1))
            if loaded == {"probs", "fixed"} or "creating server" in line:
                break
    finally:
        proc.kill()
        proc.wait(30)
    text = "".join(log)
    assert "failed to read text proto" not in text and "Poll failed" not in text, text[-3000:]
    missing = re.findall(r"unable to find backend library for backend '(\w+)'", text)
    assert loaded == {"probs", "fixed"} or set(missing) == {"onnxruntime"}, text[-3000:]


def test_a_file_name_that_is_no_model_name_asks_for_name(models: dict[str, Path], tmp_path: Path) -> None:
    named = tmp_path / "my mödel.onnx"
    named.write_bytes(models["probs"].read_bytes())
    with pytest.raises(ConfigError) as err:  # was "--name 'my mödel'" though no --name was given
        write_triton_repo(read_model_file(named), tmp_path / "repo")
    assert str(named) in str(err.value) and "give --name NAME" in str(err.value)
    assert "--name 'my" not in str(err.value)
    assert write_triton_repo(read_model_file(named), tmp_path / "repo", name="my_model").model.is_file()
    folder = tmp_path / "model"  # a folder without a suffix: not "a file without suffix"
    folder.mkdir()
    with pytest.raises(ConfigError, match="model is a folder; name the model file in it"):
        read_model_file(folder)


def test_another_version_in_the_model_folder_is_said(models: dict[str, Path], tmp_path: Path) -> None:
    write_triton_repo(read_model_file(models["probs"]), tmp_path / "repo", version=2)
    result = write_triton_repo(read_model_file(models["fixed"]), tmp_path / "repo", name="probs")
    assert any("also holds version(s) 2: Triton serves the highest one" in n for n in result.notes)


def test_a_model_already_in_place_is_kept(models: dict[str, Path], tmp_path: Path) -> None:
    """Written again from the repository's own copy (copy_model, shared with deepstream): the file
    is left as it is, not copied onto itself."""
    first = write_triton_repo(read_model_file(models["probs"]), tmp_path / "repo")
    again = write_triton_repo(read_model_file(first.model), tmp_path / "repo", name="probs")
    assert again.model == first.model and again.model.read_bytes() == models["probs"].read_bytes()
    assert [p.name for p in again.model.parent.iterdir()] == ["model.onnx"]  # no temporary file left
