"""CPU tests of everything around TensorRT: shapes, profiles, FP16 decision, trtexec, sidecar, CLI.

Nothing here builds or runs an engine (no GPU, no tensorrt on the development machine). One test
drives ``build_engine`` with a stand-in module that is NOT TensorRT, to check which documented API
calls the builder makes for 10.x and 11.x; it is named and documented as such. Real engine builds
are in ``tests/test_tensorrt_gpu.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from segpipe._optional import available
from segpipe.errors import CheckpointError, ConfigError, DataError, DependencyError, ExportError, SegpipeError
from segpipe.modelinfo import ModelInfo
from segpipe.runtime.base import compare, runner_class
from segpipe.tensorrt.build import (
    EngineOptions,
    ParserIssue,
    build_engine,
    format_parser_issues,
    inspect_onnx,
)
from segpipe.tensorrt.precision import (
    Fp16Plan,
    autocast_fp16,
    decide_precision,
    graph_precision,
    is_int8_graph,
)
from segpipe.tensorrt.shapes import (
    ProfileShape,
    TensorSpec,
    derive_profile,
    format_shapes,
    parse_shapes,
    profile_notes,
)
from segpipe.tensorrt.sidecar import (
    engine_sidecar,
    read_sidecar,
    sidecar_model_info,
    sidecar_path,
    write_sidecar,
)
from segpipe.tensorrt.verify import default_min_agreement, onnx_reference, verification_batches

sys.path.insert(0, str(Path(__file__).parent))
from trt_helpers import make_seg_onnx, no_trt, one_line, reference_logits  # noqa: E402


# ---- shape strings ------------------------------------------------------------------------------
def test_parse_shapes_trtexec_syntax():
    assert parse_shapes("input_1:1x640x1280x3") == {"input_1": (1, 640, 1280, 3)}
    assert parse_shapes("a:1x3, b:2X4") == {"a": (1, 3), "b": (2, 4)}
    assert parse_shapes("'Input:0':1x3x8x8") == {"Input:0": (1, 3, 8, 8)}
    assert format_shapes({"input_1": (1, 640, 1280, 3), "x:0": (1, 2)}) == "input_1:1x640x1280x3,'x:0':1x2"


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("input_1", "'input_1'"),
        ("input_1:1x640xfoo", "'foo'"),
        ("input_1:1x0x64x3", "'0'"),
        ("input_1:-1x64x64x3", "'-1'"),
        (":1x3", "':1x3'"),
        ("input_1:", "no dimensions"),
        ("a:1x3,,b:1x3", "empty entry"),
        ("a:1x3,a:1x4", "given twice"),
        ("'a:1x3", "unbalanced"),
        ("", "empty"),
    ],
)
def test_parse_shapes_errors_name_the_value(spec, needle):
    with pytest.raises(ConfigError) as exc:
        parse_shapes(spec, "--min-shapes")
    text = one_line(exc)
    assert text.startswith("--min-shapes")
    assert needle in text


# ---- options ------------------------------------------------------------------------------------
def test_engine_options_defaults_and_validation(tmp_path):
    opts = EngineOptions(onnx=tmp_path / "m.onnx", shapes="input_1:1x64x64x3")
    assert opts.engine == tmp_path / "m.engine"
    assert opts.shapes == {"input_1": (1, 64, 64, 3)}
    assert opts.min_shapes is None and opts.opt_level == 3 and opts.verify
    assert opts.agreement_threshold("fp32") == 0.999 and opts.agreement_threshold("fp16") == 0.99
    assert opts.agreement_threshold("int8") == 0.98
    assert EngineOptions(onnx="m.onnx", min_agreement=0.5).agreement_threshold("fp32") == 0.5
    assert EngineOptions(onnx="m.onnx", opt_shapes={"input_1": [1, 2, 3, 4]}).opt_shapes == {
        "input_1": (1, 2, 3, 4)
    }
    bad = [
        ({"onnx": "m.engine"}, "--model m.engine"),
        ({"onnx": "m.onnx", "engine": "m.onnx"}, "overwrite"),
        ({"onnx": "m.onnx", "workspace_mib": 0}, "--workspace 0"),
        ({"onnx": "m.onnx", "opt_level": 6}, "--opt-level 6"),
        ({"onnx": "m.onnx", "min_agreement": 1.5}, "--min-agreement 1.5"),
        ({"onnx": "m.onnx", "max_shapes": "input_1:1xbad"}, "'bad'"),
        ({"onnx": "m.onnx", "batch": 0}, "--batch 0"),
        ({"onnx": "m.onnx", "batch": 9, "max_batch": 4}, "--batch 9 is larger than --max-batch 4"),
    ]
    for kwargs, needle in bad:
        with pytest.raises(ConfigError) as exc:
            EngineOptions(**kwargs)
        assert needle in one_line(exc)


# ---- profile derivation -------------------------------------------------------------------------
DYN = TensorSpec("input_1", ("batch", "height", "width", 3), "float32")


INFO = ModelInfo(arch="Unet", encoder="tiny", num_classes=4, input_size=(1280, 640), layout="NHWC")


def test_profile_from_onnx_dynamic_axes_and_model_info():
    # a dynamic batch axis gets a useful range (1..8, opt 1), H and W come from the model's size
    prof = derive_profile([DYN], info=INFO, source="m.onnx")["input_1"]
    assert prof == ProfileShape((1, 640, 1280, 3), (1, 640, 1280, 3), (8, 640, 1280, 3))
    prof = derive_profile([DYN], info=INFO, batch=4, max_batch=16)["input_1"]
    assert prof == ProfileShape((1, 640, 1280, 3), (4, 640, 1280, 3), (16, 640, 1280, 3))
    assert derive_profile([DYN], info=INFO, batch=12)["input_1"].max[0] == 12  # max follows opt
    notes = profile_notes([DYN], {"input_1": prof}, {"shapes": None})
    assert notes == [
        "input_1 has a dynamic batch axis: engine profile batch min 1, opt 4, max 16 "
        "(1x640x1280x3 to 16x640x1280x3; change with --batch/--max-batch)"
    ]
    assert profile_notes([DYN], {"input_1": prof}, {"shapes": {"input_1": (1, 640, 1280, 3)}}) == []
    static = TensorSpec("input_1", (2, 64, 96, 3), "uint8")
    assert derive_profile([static])["input_1"].opt == (2, 64, 96, 3)
    fixed_batch = TensorSpec("input_1", (1, "height", "width", 3), "float32")
    assert derive_profile([fixed_batch], info=INFO)["input_1"].is_static


@pytest.mark.parametrize(
    ("inp", "kwargs", "needle"),
    [
        (TensorSpec("input_1", (1, 64, 96, 3), "float32"), {"max_batch": 8}, "--max-batch 8: input input_1"),
        (DYN, {"batch": 2, "shapes": {"input_1": (2, 640, 1280, 3)}}, "--batch 2: input input_1"),
    ],
)
def test_batch_range_refused_where_it_cannot_apply(inp, kwargs, needle):
    with pytest.raises(ConfigError) as exc:
        derive_profile([inp], info=INFO, source="m.onnx", **kwargs)
    assert needle in one_line(exc) and "m.onnx" in one_line(exc)


def test_profile_from_shapes_follows_trtexec():
    prof = derive_profile([DYN], shapes={"input_1": (1, 640, 1280, 3)}, info=INFO)["input_1"]
    assert prof.min == prof.opt == prof.max == (1, 640, 1280, 3)
    prof = derive_profile(
        [DYN],
        min_shapes={"input_1": (1, 320, 640, 3)},
        opt_shapes={"input_1": (2, 640, 1280, 3)},
        max_shapes={"input_1": (4, 1024, 2048, 3)},
        info=INFO,
    )["input_1"]
    assert not prof.is_static and prof.describe() == "min 1x320x640x3 opt 2x640x1280x3 max 4x1024x2048x3"
    assert prof.to_dict() == {"min": [1, 320, 640, 3], "opt": [2, 640, 1280, 3], "max": [4, 1024, 2048, 3]}


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({}, "--shapes input_1:NxHxWxC"),  # dynamic, no metadata
        ({"shapes": {"input": (1, 64, 64, 3)}}, "no input named 'input'"),
        ({"shapes": {"input_1": (1, 64, 64)}}, "has 4 axes"),
        ({"shapes": {"input_1": (1, 64, 64, 4)}}, "axis 3 of input_1 is fixed to 3"),
        ({"min_shapes": {"input_1": (1, 64, 64, 3)}}, "need --opt-shapes"),
        ({"shapes": {"input_1": (1, 64, 64, 3)}, "min_shapes": {"input_1": (1, 32, 32, 3)}}, "give both"),
        ({"shapes": {"input_1": (1, 64, 64, 3)}, "opt_shapes": {"input_1": (1, 32, 32, 3)}}, "disagree"),
        (
            {
                "min_shapes": {"input_1": (2, 64, 64, 3)},
                "shapes": {"input_1": (1, 64, 64, 3)},
                "max_shapes": {"input_1": (4, 64, 64, 3)},
            },
            "min 2x64x64x3 <= opt 1x64x64x3",
        ),
    ],
)
def test_profile_errors(kwargs, needle):
    with pytest.raises(ConfigError) as exc:
        derive_profile([DYN], source="m.onnx", **kwargs)
    assert needle in one_line(exc)


def test_profile_checks_output_stride():
    with pytest.raises(ConfigError) as exc:
        derive_profile([DYN], shapes={"input_1": (1, 600, 1280, 3)}, info=INFO)
    text = one_line(exc)
    assert text.startswith("--shapes input_1:1x600x1280x3 has W H 1280 600:") and "multiples" in text


def test_inspect_onnx_reads_dynamic_axes_metadata_and_precision(tmp_path):
    path = make_seg_onnx(tmp_path / "m.onnx", size=(64, 32))
    summary = inspect_onnx(EngineOptions(onnx=path))
    assert summary.dynamic and summary.precision == "fp32"
    assert summary.inputs[0].dims == ("batch", "height", "width", 3)
    assert summary.profile["input_1"].opt == (1, 32, 64, 3)  # from ModelInfo.input_size (W, H)
    assert summary.info.num_classes == 4 and summary.outputs[0].name == "output"
    with pytest.raises(CheckpointError) as exc:
        inspect_onnx(EngineOptions(onnx=tmp_path / "missing.onnx"))
    assert "missing.onnx" in one_line(exc)


# ---- FP16 decision ------------------------------------------------------------------------------
def test_graph_precision(tmp_path):
    import onnx

    fp32 = onnx.load(make_seg_onnx(tmp_path / "a.onnx"))
    fp16 = onnx.load(make_seg_onnx(tmp_path / "b.onnx", half=True))
    bare16 = onnx.load(make_seg_onnx(tmp_path / "c.onnx", half=True, metadata=False))
    assert graph_precision(fp32) == "fp32"
    assert graph_precision(fp16) == "fp16"
    assert graph_precision(bare16) == "fp16"  # found by scanning initializer dtypes
    qdq = onnx.load(make_seg_onnx(tmp_path / "d.onnx", int8=True))  # metadata says fp32: Q/DQ nodes rule
    assert is_int8_graph(qdq) and graph_precision(qdq) == "int8"
    assert not is_int8_graph(fp32)
    # the metadata helper `segpipe export-onnx --int8` writes is enough on its own
    onnx.helper.set_model_props(
        fp32, {**{p.key: p.value for p in fp32.metadata_props}, "segpipe.precision": '"int8"'}
    )
    assert is_int8_graph(fp32) and graph_precision(fp32) == "int8"
    contrib = onnx.load(
        tmp_path / "d.onnx"
    )  # ONNX Runtime's com.microsoft Q/DQ: TensorRT does not parse them
    for node in contrib.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            node.domain = "com.microsoft"
    assert not is_int8_graph(contrib)


CASES = [
    # major, graph, --fp16, modelopt, expected plan, precision, strongly typed, builder flags
    (10, "fp32", False, False, Fp16Plan.AS_IS, "fp32", False, ()),
    (10, "fp32", False, True, Fp16Plan.AS_IS, "fp32", False, ()),
    (10, "fp32", True, False, Fp16Plan.BUILDER_FLAG, "fp16", False, ("FP16",)),
    (10, "fp32", True, True, Fp16Plan.BUILDER_FLAG, "fp16", False, ("FP16",)),
    (10, "fp16", False, False, Fp16Plan.AS_IS, "fp16", True, ()),
    (10, "fp16", False, True, Fp16Plan.AS_IS, "fp16", True, ()),
    (10, "fp16", True, False, Fp16Plan.AS_IS, "fp16", True, ()),
    (10, "fp16", True, True, Fp16Plan.AS_IS, "fp16", True, ()),
    (10, "int8", False, False, Fp16Plan.AS_IS, "int8", True, ()),
    (10, "int8", True, True, Fp16Plan.AS_IS, "int8", True, ()),  # never STRONGLY_TYPED + FP16/INT8
    (11, "fp32", False, False, Fp16Plan.AS_IS, "fp32", True, ()),
    (11, "fp32", False, True, Fp16Plan.AS_IS, "fp32", True, ()),
    (11, "fp32", True, False, None, None, None, None),  # stop: re-export with --half or install modelopt
    (11, "fp32", True, True, Fp16Plan.AUTOCAST, "fp16", True, ()),
    (11, "fp16", False, False, Fp16Plan.AS_IS, "fp16", True, ()),
    (11, "fp16", False, True, Fp16Plan.AS_IS, "fp16", True, ()),
    (11, "fp16", True, False, Fp16Plan.AS_IS, "fp16", True, ()),
    (11, "fp16", True, True, Fp16Plan.AS_IS, "fp16", True, ()),
    (11, "int8", False, False, Fp16Plan.AS_IS, "int8", True, ()),
    (11, "int8", True, False, Fp16Plan.AS_IS, "int8", True, ()),
    (8, "int8", False, False, Fp16Plan.BUILDER_FLAG, "int8", False, ("INT8",)),
    (8, "int8", True, False, Fp16Plan.BUILDER_FLAG, "int8", False, ("INT8", "FP16")),
]


@pytest.mark.parametrize(("major", "graph", "fp16", "modelopt", "plan", "precision", "typed", "flags"), CASES)
def test_decide_precision_every_case(major, graph, fp16, modelopt, plan, precision, typed, flags):
    if plan is None:
        with pytest.raises(ExportError) as exc:
            decide_precision(major, graph, fp16, modelopt, source="m.onnx")
        text = one_line(exc)
        assert "m.onnx" in text and "segpipe export-onnx --half" in text and "nvidia-modelopt" in text
        return
    decision = decide_precision(major, graph, fp16, modelopt, source="m.onnx")
    got = (decision.plan, decision.precision, decision.strongly_typed, decision.builder_flags)
    assert got == (plan, precision, typed, flags)
    assert not (decision.strongly_typed and decision.builder_flags)
    assert "\n" not in decision.note
    assert ("--fp16 dropped" in decision.note) == (graph == "int8" and fp16 and major >= 10)
    # --int8 changes nothing for a Q/DQ graph
    if graph == "int8":
        assert decide_precision(major, graph, fp16, modelopt, source="m.onnx", int8=True) == decision


@pytest.mark.parametrize("major", [8, 10, 11])
@pytest.mark.parametrize("graph", ["fp32", "fp16"])
def test_int8_flag_without_qdq_graph_says_how_to_make_one(major, graph):
    with pytest.raises(ExportError) as exc:
        decide_precision(major, graph, False, True, source="m.onnx", int8=True)
    text = one_line(exc)
    assert "m.onnx" in text and "segpipe export-onnx --int8 --calib-images DIR" in text
    assert "QuantizeLinear/DequantizeLinear" in text


def test_decide_precision_trt8_and_bad_precision():
    assert decide_precision(8, "fp32", True, False).plan is Fp16Plan.BUILDER_FLAG
    assert decide_precision(8, "fp32", False, False).plan is Fp16Plan.AS_IS
    with pytest.raises(ConfigError):
        decide_precision(10, "int4", False, False)


@pytest.mark.skipif(not available("modelopt.onnx.autocast"), reason="nvidia-modelopt[onnx] not installed")
def test_autocast_fp16_converts_for_real(tmp_path):
    """Runs ModelOpt AutoCast on CPU and checks the result with ONNX Runtime (no TensorRT involved)."""
    import onnx

    src = make_seg_onnx(tmp_path / "m.onnx", dims=(1, 32, 64, 3), size=(64, 32))
    out = autocast_fp16(src, tmp_path / "m.fp16.onnx")
    model = onnx.load(out)
    assert graph_precision(model) == "fp16"
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # keep_io_types
    assert ModelInfo.from_metadata({p.key: p.value for p in model.metadata_props}).precision == "fp16"
    batch = verification_batches((1, 32, 64, 3))[0]
    (ref,), (half,) = onnx_reference(src, [batch]), onnx_reference(out, [batch])
    assert compare(ref, half).argmax_agreement >= 0.99


# ---- sidecar ------------------------------------------------------------------------------------
def test_sidecar_contents_roundtrip(tmp_path):
    onnx = make_seg_onnx(tmp_path / "m.onnx", size=(1280, 640))
    summary = inspect_onnx(EngineOptions(onnx=onnx, shapes="input_1:1x640x1280x3"))
    engine = tmp_path / "m.bin"
    sidecar = engine_sidecar(
        engine_path=engine,
        onnx_path=onnx,
        metadata=summary.metadata,
        tensorrt_version="10.3.0",
        gpu_name="NVIDIA H100",
        compute_capability="9.0",
        precision="fp16",
        onnx_precision="fp32",
        fp16_method="builder-flag",
        strongly_typed=False,
        profile=summary.profile,
        inputs=summary.inputs,
        outputs=summary.outputs,
        workspace_mib=2048,
        opt_level=3,
    )
    path = write_sidecar(engine, sidecar)
    assert path == sidecar_path(engine) == tmp_path / "m.bin.json"
    data = read_sidecar(engine)
    assert data == json.loads(json.dumps(sidecar))
    assert data["tensorrt_version"] == "10.3.0" and data["gpu_name"] == "NVIDIA H100"
    assert (
        data["compute_capability"] == "9.0"
        and data["precision"] == "fp16"
        and data["onnx_precision"] == "fp32"
    )
    assert data["profile"] == {
        "input_1": {"min": [1, 640, 1280, 3], "opt": [1, 640, 1280, 3], "max": [1, 640, 1280, 3]}
    }
    info = sidecar_model_info(data)
    assert info.precision == "fp16" and info.num_classes == 4 and info.input_size == (1280, 640)
    assert read_sidecar(tmp_path / "other.engine") is None
    (tmp_path / "bad.engine.json").write_text("{not json")
    with pytest.raises(CheckpointError) as exc:
        read_sidecar(tmp_path / "bad.engine")
    assert "bad.engine.json" in one_line(exc)


# ---- verification inputs and the ONNX Runtime reference (the engine side needs a GPU) -----------
def test_verification_batches_random_and_images(tmp_path):
    import cv2

    random = verification_batches((2, 32, 64, 3), "uint8")
    assert len(random) == 2 and random[0].shape == (2, 32, 64, 3) and random[0].dtype == np.uint8
    assert np.array_equal(random[0], verification_batches((2, 32, 64, 3), "uint8")[0])  # seeded
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        img = np.full((50, 70, 3), 40 * i, np.uint8)
        img[..., 0] = 255  # blue in BGR -> must come back as channel 2 in RGB
        cv2.imwrite(str(folder / f"{i}.png"), img)
    batches = verification_batches((2, 32, 64, 3), "float32", folder)
    assert [b.shape for b in batches] == [(2, 32, 64, 3), (2, 32, 64, 3)] and batches[0].dtype == np.float32
    assert np.all(batches[0][..., 2] == 255)
    with pytest.raises(DataError):
        verification_batches((1, 32, 64, 3), images_dir=tmp_path / "nowhere")
    assert default_min_agreement("fp32") == 0.999 and default_min_agreement("fp16") == 0.99


def test_onnx_reference_matches_numpy(tmp_path):
    onnx = make_seg_onnx(tmp_path / "m.onnx")
    batches = verification_batches((2, 32, 64, 3))
    (out, _), ref = onnx_reference(onnx, batches), reference_logits(batches[0])
    assert out.shape == (2, 4, 32, 64) and np.allclose(out, ref, atol=1e-4)
    assert compare(ref, out).argmax_agreement == 1.0


# ---- no tensorrt: library, runner and CLI -------------------------------------------------------
@no_trt
def test_build_engine_without_tensorrt_names_the_install_command(tmp_path):
    with pytest.raises(DependencyError) as exc:
        build_engine(EngineOptions(onnx=make_seg_onnx(tmp_path / "m.onnx")))
    assert 'pip install "segpipe[trt]"' in one_line(exc) and "pypi.nvidia.com" in str(exc.value)


@no_trt
def test_runner_without_tensorrt(tmp_path):
    cls = runner_class(tmp_path / "m.engine")
    assert cls.__name__ == "TensorRTRunner" and cls.backend == "tensorrt"
    with pytest.raises(DependencyError) as exc:
        cls(tmp_path / "m.engine")
    assert "segpipe[trt]" in one_line(exc)
    with pytest.raises(ConfigError) as exc:
        cls(tmp_path / "m.engine", device="cpu")
    assert "CUDA GPU" in one_line(exc)


def test_cuda_check_reports_real_cuda_errors():
    """cuda-python is installed with torch: without a GPU its calls fail, and the error is one line."""
    from segpipe.tensorrt.runner import cuda_check, cuda_runtime

    cudart = cuda_runtime()
    result = cudart.cudaStreamCreate()
    if int(result[0]) == 0:  # a GPU is present: clean up, nothing to check
        cudart.cudaStreamDestroy(result[1])
        pytest.skip("a CUDA device is available")
    with pytest.raises(SegpipeError) as exc:
        cuda_check(cudart, result, "cudaStreamCreate")
    text = one_line(exc)
    assert text.startswith("CUDA cudaStreamCreate failed: no CUDA driver/GPU (cudaError"), text


def test_native_handle_of_a_stream_without_deprecated_int(recwarn):
    """``execute_async_v3`` gets the stream as an int, through ``get_cuda_native_handle`` where
    cuda-bindings has it (``int(cuda_obj)`` is deprecated since 12.9.1 / 13.0.0). CPU only: a null
    ``cudaStream_t`` is built, nothing runs on a GPU."""
    from segpipe.tensorrt.runner import cuda_runtime, native_handle

    cudart = cuda_runtime()
    assert native_handle(cudart.cudaStream_t(0)) == 0 and native_handle(12345) == 12345
    assert not [w for w in recwarn if issubclass(w.category, DeprecationWarning)]


def test_split_batch_fits_the_profile():
    from segpipe.tensorrt.runner import split_batch

    assert split_batch(3, 1, 4) == [(0, 3, 0)]
    assert split_batch(6, 1, 4) == [(0, 4, 0), (4, 6, 0)]
    assert split_batch(1, 4, 4) == [(0, 1, 3)]  # static batch 4: pad with 3 copies
    assert split_batch(9, 4, 4) == [(0, 4, 0), (4, 8, 0), (8, 9, 3)]
    assert split_batch(2, 1, 1) == [(0, 1, 0), (1, 2, 0)]


def test_parser_issues_on_one_line():
    issues = [ParserIssue("head_conv", "Conv", "unsupported\n attribute"), ParserIssue("", "", "bad graph")]
    assert format_parser_issues(issues) == "node 'head_conv' (Conv): unsupported attribute; graph: bad graph"
    assert format_parser_issues(issues * 5, limit=2).endswith("; and 8 more")
