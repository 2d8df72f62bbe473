"""Training: the loop, losses, mix-up, metrics and run logging.

Imports point one way: ``launch`` (the entry point ``train`` and the multi-process launcher) ->
``loop`` (the :class:`~segpipe.training.loop.Trainer`) -> ``outputs``, ``state`` and the helpers.
"""

from segpipe.training.launch import train
from segpipe.training.state import RunResult

__all__ = ["RunResult", "train"]
