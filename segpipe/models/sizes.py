"""The input sizes a built model takes: output stride, minimum side, fixed sizes (ViT encoders),
found by tracing the model on the ``meta`` device; one-line errors naming sizes that work."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import nn

from segpipe.errors import ConfigError, first_line
from segpipe.modelinfo import ModelInfo


def output_stride(model: nn.Module) -> int:
    """H and W of inputs must be multiples of this (the encoder's output stride)."""
    enc = getattr(model, "encoder", None)
    stride = getattr(enc, "output_stride", None)
    return int(stride) if stride else 32


@dataclass(frozen=True)
class SizeRule:
    """The input sizes a built model takes: multiples of ``stride``, each side at least
    ``min_side``; or only ``fixed`` (W, H) (ViT encoders with a fixed patch grid)."""

    stride: int
    min_side: int
    fixed: tuple[int, int] | None = None

    def describe(self) -> str:
        if self.fixed is not None:
            return f"only {self.fixed[0]}x{self.fixed[1]}"
        text = f"width and height multiples of {self.stride}"
        return text + (f", each at least {self.min_side}" if self.min_side > self.stride else "")

    def nearest(self, width: int, height: int) -> tuple[int, int]:
        """The size this rule allows closest to (``width``, ``height``)."""
        if self.fixed is not None:
            return self.fixed

        def fit(v: int) -> int:
            return max(self.min_side, self.stride, round(v / self.stride) * self.stride)

        return fit(width), fit(height)


def size_problem(model: nn.Module, width: int, height: int, in_channels: int = 3) -> str | None:
    """Why ``model`` cannot take a ``width`` x ``height`` input (its own error, one line), or None.

    A shape-only forward pass: the weights are swapped for meta tensors (no memory, no arithmetic),
    in eval mode; when an op has no meta kernel, one real image on the CPU instead.
    """
    from torch.func import functional_call

    was_training = model.training
    model.eval()
    try:
        tensors = {n: t for n, t in model.named_parameters()}
        tensors.update({n: t for n, t in model.named_buffers()})
        device = next(iter(tensors.values())).device if tensors else torch.device("cpu")
        meta = {n: torch.empty_like(t, device="meta") for n, t in tensors.items()}
        x = torch.empty(1, in_channels, height, width, device="meta")
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                functional_call(model, meta, (x,), strict=False)
                return None
            except (NotImplementedError, RuntimeError) as e:
                if "meta" not in str(e).lower():
                    return first_line(e, 160, typed=False)
            except Exception as e:
                return first_line(e, 160, typed=False)
            try:  # an op without a meta kernel: one real image
                model(torch.zeros(1, in_channels, height, width, device=device))
            except Exception as e:
                return first_line(e, 160, typed=False)
            return None
    finally:
        model.train(was_training)


def size_rule(model: nn.Module, in_channels: int = 3, largest: int = 1024) -> SizeRule:
    """The sizes ``model`` takes, found by shape-only forward passes (squares up to ``largest``)."""
    stride = output_stride(model)
    encoder = getattr(model, "encoder", None)
    vit = getattr(encoder, "model", None)
    if getattr(encoder, "is_fixed_input_size", False) and not getattr(vit, "dynamic_img_size", False):
        embed = getattr(vit, "patch_embed", None)
        img = getattr(embed, "img_size", None)
        if img is not None:
            return SizeRule(stride, int(min(img)), (int(img[1]), int(img[0])))
    side = stride
    while side <= largest:
        if size_problem(model, side, side, in_channels) is None:
            return SizeRule(stride, side)
        side += stride
    return SizeRule(stride, largest + stride)


def model_label(info: ModelInfo) -> str:
    """``Unet/resnet18``: how errors name a model."""
    return f"{info.arch}/{info.encoder}"


def check_model_size(model: nn.Module, info: ModelInfo, size: tuple[int, int], what: str = "--size") -> None:
    """One-line :class:`ConfigError` when ``model`` cannot take ``size`` (W, H): the model, the size
    and the sizes that work. First the output stride, then a shape-only forward pass."""
    from segpipe.utils import check_divisible

    width, height = int(size[0]), int(size[1])
    stride = output_stride(model)
    try:
        check_divisible(width, height, stride, what)
    except ConfigError as e:
        if not getattr(getattr(model, "encoder", None), "is_fixed_input_size", False):
            raise ConfigError(f"{model_label(info)}: {e}") from None
    problem = size_problem(model, width, height, info.in_channels)
    if problem is None:
        return
    rule = size_rule(model, info.in_channels)
    w, h = rule.nearest(width, height)
    raise ConfigError(
        f"{what} {width} {height}: {model_label(info)} cannot take {width}x{height} ({problem}); "
        f"it takes {rule.describe()}, e.g. {what} {w} {h}"
    )
