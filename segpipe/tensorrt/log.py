"""TensorRT's side of a build, turned into segpipe messages: parser errors and the builder log.

``parser_issues`` reads every error an ``OnnxParser`` recorded (``num_errors``, ``get_error(i)``,
and on each error ``desc()``, ``node_name()``, ``node_operator()`` as the TensorRT 10 Python API
documents ``ParserError``); ``format_parser_issues`` puts them on one line with node names and op
types. ``build_logger`` is a ``trt.ILogger`` subclass (``trt.ILogger.__init__(self)`` then
``log(severity, msg)``, per the TensorRT Python API "Logger" page) that keeps the errors for the
one-line failure message and forwards the rest to the reporter with ``--verbose``.

Sources:

* Logger: https://docs.nvidia.com/deeplearning/tensorrt/latest/_static/python-api/infer/Core/Logger.html
  ("To implement a custom logger, ensure that you explicitly instantiate the base class in
  __init__()"; "The logger should be valid until all objects created are released", hence the
  process-wide cache in :func:`build_logger`).
* Parser errors: C++ ``nvonnxparser::IParserError`` has ``nodeName()`` / ``nodeOperator()`` in 10.x
  (docs.nvidia.com/deeplearning/tensorrt/latest/_static/c-api/classnvonnxparser_1_1_i_parser_error-members.html,
  absent from the 8.4 list); the Python parser bindings (``pyOnnx.cpp`` of a 10.x revision) define
  ``ParserError.node_name`` and ``node_operator`` next to ``code``, ``desc``, ``node``. The
  ``hasattr`` fallbacks only matter for pre-10 bindings, which build-trt refuses anyway.
  (``get_error``'s pybind11 signature names the C++ type ``nvonnxparser::IParserError``; the Python
  class is ``ParserError``.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from segpipe.progress import Reporter


@dataclass(frozen=True)
class ParserIssue:
    """One ONNX parser error: the node it concerns and TensorRT's description."""

    node_name: str
    op_type: str
    desc: str

    def __str__(self) -> str:
        where = f"node {self.node_name!r} ({self.op_type})" if self.node_name or self.op_type else "graph"
        return f"{where}: {' '.join(self.desc.split())}"


def parser_issues(parser: Any) -> list[ParserIssue]:
    """Every error a TensorRT ``OnnxParser`` recorded (``node_name``/``node_operator`` exist in 10.x+)."""
    issues = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        name = err.node_name() if hasattr(err, "node_name") else str(err.node())
        op = err.node_operator() if hasattr(err, "node_operator") else ""
        issues.append(ParserIssue(str(name or ""), str(op or ""), str(err.desc())))
    return issues


def format_parser_issues(issues: list[ParserIssue], limit: int = 8) -> str:
    """All parser errors on one line (the first ``limit``, then a count)."""
    text = "; ".join(str(i) for i in issues[:limit])
    if len(issues) > limit:
        text += f"; and {len(issues) - limit} more"
    return text or "no error recorded"


def _logger_class(trt: Any) -> type:
    """A ``trt.ILogger`` subclass that keeps errors and forwards messages to a reporter."""

    class CollectingLogger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []
            self.reporter: Reporter = Reporter()
            self.verbose = False

        def log(self, severity: Any, msg: str) -> None:
            if severity in (trt.ILogger.Severity.ERROR, trt.ILogger.Severity.INTERNAL_ERROR):
                self.errors.append(" ".join(str(msg).split()))
                self.reporter.warn(f"TensorRT: {msg}")
            elif severity == trt.ILogger.Severity.WARNING and self.verbose:
                self.reporter.warn(f"TensorRT: {msg}")
            elif self.verbose:
                self.reporter.info(f"TensorRT: {msg}")

    return CollectingLogger


_LOGGERS: dict[int, Any] = {}


def build_logger(trt: Any, reporter: Reporter, verbose: bool) -> Any:
    """One logger per process (TensorRT historically treats the logger as a singleton)."""
    logger = _LOGGERS.get(id(trt))
    if logger is None:
        logger = _LOGGERS[id(trt)] = _logger_class(trt)()
    logger.errors, logger.reporter, logger.verbose = [], reporter, verbose
    return logger
