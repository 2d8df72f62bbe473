"""The network as deployed: normalisation inside the graph (:class:`Normalize`) and the output
kind (logits, probabilities or class map) of :class:`DeployModel`, which export-onnx exports and the
PyTorch runner runs."""

from __future__ import annotations

import torch
from torch import nn

from segpipe.errors import ConfigError
from segpipe.modelinfo import ModelInfo


class Normalize(nn.Module):
    """N×H×W×3 RGB pixels (uint8 or float 0-255) -> normalised float N×3×H×W (channels-last memory).

    ``(x / 255 - mean) / std``, folded into one multiply-add. Used by the training loop on the
    device and inside exported graphs, so training and deployment preprocess identically.
    """

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        mean_t = torch.tensor(mean, dtype=torch.float32)
        std_t = torch.tensor(std, dtype=torch.float32)
        self.register_buffer("scale", 1.0 / (255.0 * std_t), persistent=False)
        self.register_buffer("shift", -mean_t / std_t, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.scale.dtype) * self.scale + self.shift
        return x.permute(0, 3, 1, 2)


OUTPUT_KINDS = ("logits", "probs", "labels")


class DeployModel(nn.Module):
    """The network as deployed: NHWC RGB 0-255 in, logits / probabilities / class map out.

    This is what ``export-onnx`` exports and what the PyTorch runner runs, so both backends see
    exactly the same graph. ``labels`` is the argmax (binary: logit > 0) as int64 N×H×W.
    """

    def __init__(self, model: nn.Module, info: ModelInfo, output: str = "logits") -> None:
        super().__init__()
        if output not in OUTPUT_KINDS:
            raise ConfigError(f"--output {output!r} is not one of {', '.join(OUTPUT_KINDS)}")
        self.model = model
        self.normalize = Normalize(info.mean, info.std)
        self.mode = info.mode
        self.output = output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.model(self.normalize(x))
        if self.output == "logits":
            return y
        if self.output == "probs":
            return torch.softmax(y, dim=1) if self.mode == "seg" else torch.sigmoid(y)
        if self.mode == "binary":
            return (y[:, 0] > 0).to(torch.int64)
        return torch.argmax(y, dim=1)
