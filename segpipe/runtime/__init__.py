"""Inference runtime: one small :class:`~segpipe.runtime.base.Runner` interface, one file per backend.

``load_runner(path)`` picks the backend from the file suffix (see ``RUNNERS``).
"""

from segpipe.runtime.base import RUNNERS, CompareResult, Runner, compare, load_runner, to_labels

__all__ = ["RUNNERS", "CompareResult", "Runner", "compare", "load_runner", "to_labels"]
