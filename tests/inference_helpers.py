"""Tiny models for the inference tests: a checkpoint, a bare state_dict and ONNX exports of them.

The ONNX files are exported with ``torch.onnx.export`` of :class:`~segpipe.models.DeployModel`
directly (the ONNX contract: ``input_1`` NHWC 0-255, ``output``) with segpipe metadata, so these
tests do not depend on ``segpipe export-onnx``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import onnx
import torch

from segpipe.modelinfo import ModelInfo
from segpipe.models import DeployModel, create_model, save_checkpoint

CLASS_NAMES = ("ground", "thing", "sky")
COLORS = ((10, 20, 30), (200, 40, 40), (40, 200, 220))
#: the tiny timm encoder the rest of the suite uses (conftest.ENCODER): small files, fast exports
ENCODER = "tu-mobilenetv3_small_050"


def tiny_info(num_classes: int = 3, size: tuple[int, int] = (64, 64), **kw) -> ModelInfo:
    """An FPN/ENCODER description (quick to build and export) with distinctive names and colours."""
    names = (
        CLASS_NAMES[:num_classes]
        if num_classes <= len(CLASS_NAMES)
        else tuple(f"c{i}" for i in range(num_classes))
    )
    colors = COLORS[:num_classes] if num_classes <= len(COLORS) else ()
    return ModelInfo(
        arch="FPN",
        encoder=ENCODER,
        num_classes=num_classes,
        input_size=size,
        class_names=names,
        colors=colors,
        **kw,
    )


def tiny_model(info: ModelInfo, seed: int = 0, constant_class: int | None = None) -> torch.nn.Module:
    """Random weights (seeded); with ``constant_class`` the head predicts that class everywhere."""
    torch.manual_seed(seed)
    model = create_model(info, encoder_weights=None).eval()
    if constant_class is not None:
        conv = model.segmentation_head[0]
        with torch.no_grad():
            conv.weight.zero_()
            conv.bias.zero_()
            conv.bias[constant_class] = 10.0
    return model


def make_checkpoint(
    path: Path, info: ModelInfo | None = None, seed: int = 0, constant_class: int | None = None
) -> tuple[Path, torch.nn.Module, ModelInfo]:
    """A segpipe checkpoint of a tiny model; returns (path, model, info)."""
    info = info or tiny_info()
    model = tiny_model(info, seed, constant_class)
    save_checkpoint(path, model, info)
    return Path(path), model, info


def save_bare(path: Path, model: torch.nn.Module) -> Path:
    """What older scripts saved: the state_dict alone."""
    torch.save(model.state_dict(), path)
    return Path(path)


def export_onnx(
    model: torch.nn.Module,
    info: ModelInfo,
    path: Path,
    *,
    dynamic: bool = True,
    uint8: bool = False,
    output: str = "logits",
    metadata: bool = True,
    batch: int = 1,
) -> Path:
    """Export ``DeployModel(model, info, output)`` as the ONNX contract describes.

    ``dynamic``: batch, height and width are dynamic axes; otherwise the graph is fixed to
    ``batch`` × the info's input size.
    """
    w, h = info.input_size
    dummy = torch.zeros(batch, h, w, 3, dtype=torch.uint8 if uint8 else torch.float32)
    out_axes = {0: "n", 1: "h", 2: "w"} if output == "labels" else {0: "n", 2: "h", 3: "w"}
    dyn = {"input_1": {0: "n", 1: "h", 2: "w"}, "output": out_axes} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            DeployModel(model, info, output).eval(),
            dummy,
            str(path),
            input_names=["input_1"],
            output_names=["output"],
            dynamic_axes=dyn,
            dynamo=False,
            opset_version=17,
        )
    proto = onnx.load(str(path))
    if metadata:
        meta = info.replace(layout="NHWC", input_dtype="uint8" if uint8 else "float32", output_kind=output)
        for key, value in meta.to_metadata().items():
            prop = proto.metadata_props.add()
            prop.key, prop.value = key, value
    onnx.save(proto, str(path))
    return Path(path)


def printed_wide(render: Any, *args: Any) -> str:
    """What ``render(*args)`` prints on segpipe's console, 400 columns wide (one table row per line,
    so words are not wrapped apart)."""
    from segpipe.cli.common import console

    width = console.width
    console.width = 400
    try:
        with console.capture() as cap:
            render(*args)
    finally:
        console.width = width
    return cap.get()
