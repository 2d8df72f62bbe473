"""Training: the loop, losses, mix-up, metrics and run logging."""

from segpipe.training.loop import RunResult, train

__all__ = ["RunResult", "train"]
