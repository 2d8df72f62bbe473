"""``NotTensorRT``: a recording stand-in for the ``tensorrt`` module. It is NOT TensorRT.

It builds nothing and runs nothing. It only exposes, for one TensorRT major version, the Python
names the builder uses as the TensorRT Python API reference documents them (``Builder``,
``ILogger`` and ``ILogger.Severity``, ``NetworkDefinitionCreationFlag`` (10.x: ``EXPLICIT_BATCH`` and
``STRONGLY_TYPED``; 11.x: only the deprecated, ignored ``STRONGLY_TYPED``),
``OnnxParser.parse_from_file / num_errors / get_error`` with ``desc / node_name / node_operator``,
``MemoryPoolType.WORKSPACE``, ``BuilderFlag.FP16`` (10.x only: removed in 11.x),
``ProfilingVerbosity.DETAILED``, ``IBuilderConfig.set_memory_pool_limit / builder_optimization_level /
set_flag / add_optimization_profile / create_timing_cache / set_timing_cache / get_timing_cache``,
``IOptimizationProfile.set_shape``, ``Builder.build_serialized_network``) and records every call,
so tests can check which calls ``segpipe.tensorrt.build.build_engine`` makes per version. The
"plan" it returns is the marker :attr:`NotTensorRT.PLAN`, not an engine.
"""

from __future__ import annotations

import enum
from typing import Any


class NotTensorRT:
    """Recording stand-in for ``import tensorrt`` (see the module docstring). NOT TensorRT."""

    PLAN = b"NOT-A-TENSORRT-ENGINE: recorded by tests/not_tensorrt.py"
    CACHE = b"NOT-A-TENSORRT-TIMING-CACHE"

    def __init__(
        self,
        major: int,
        parser_errors: list[tuple[str, str, str]] | None = None,
        build_fails: bool = False,
    ) -> None:
        self.__version__ = f"{major}.99.0+not.tensorrt"
        self.calls: list[tuple[Any, ...]] = []
        record = self.calls.append
        stand_in = self

        class Severity(enum.IntEnum):
            INTERNAL_ERROR = 0
            ERROR = 1
            WARNING = 2
            INFO = 3
            VERBOSE = 4

        class ILogger:
            def __init__(self) -> None:
                record(("ILogger.__init__",))

        ILogger.Severity = Severity  # type: ignore[attr-defined]
        self.ILogger = ILogger

        # Members as the Python references list them: 10.x has EXPLICIT_BATCH (deprecated, ignored) and
        # STRONGLY_TYPED; the 11.0 reference lists no EXPLICIT_BATCH and marks STRONGLY_TYPED
        # "[DEPRECATED] ... ignored" (docs.nvidia.com/deeplearning/tensorrt/11.0.0/_static/python-api/
        # infer/Core/Builder.html). The numeric values here are the stand-in's own.
        flags = {"EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 1} if major == 10 else {"STRONGLY_TYPED": 0}
        self.NetworkDefinitionCreationFlag = enum.IntEnum("NetworkDefinitionCreationFlag", flags)
        self.MemoryPoolType = enum.Enum("MemoryPoolType", {"WORKSPACE": 0})
        self.BuilderFlag = enum.Enum(
            "BuilderFlag", {"FP16": 0} if major == 10 else {"NOT_TENSORRT_PLACEHOLDER": 0}
        )
        self.ProfilingVerbosity = enum.Enum("ProfilingVerbosity", {"DETAILED": 2})

        class ParserError:
            def __init__(self, node: str, op: str, desc: str) -> None:
                self._node, self._op, self._desc = node, op, desc

            def desc(self) -> str:
                return self._desc

            def node_name(self) -> str:
                return self._node

            def node_operator(self) -> str:
                return self._op

        class OnnxParser:
            def __init__(self, network: Any, logger: Any) -> None:
                self.errors = [ParserError(*e) for e in parser_errors or []]

            @property
            def num_errors(self) -> int:
                return len(self.errors)

            def get_error(self, index: int) -> ParserError:
                return self.errors[index]

            def parse_from_file(self, path: str) -> bool:
                record(("parse_from_file", path))
                return not self.errors

        self.OnnxParser = OnnxParser

        class TimingCache:
            def serialize(self) -> bytes:
                return NotTensorRT.CACHE

        class Profile:
            def set_shape(self, name: str, lo: Any, opt: Any, hi: Any) -> None:
                record(("set_shape", name, tuple(lo), tuple(opt), tuple(hi)))

        class Config:
            def set_memory_pool_limit(self, pool: Any, size: int) -> None:
                record(("set_memory_pool_limit", pool.name, size))

            def __setattr__(self, name: str, value: Any) -> None:
                record((name, value))
                object.__setattr__(self, name, value)

            def set_flag(self, flag: Any) -> None:
                record(("set_flag", flag.name))

            def add_optimization_profile(self, profile: Any) -> int:
                record(("add_optimization_profile",))
                return 0

            def create_timing_cache(self, data: bytes) -> TimingCache:
                record(("create_timing_cache", bytes(data)))
                return TimingCache()

            def set_timing_cache(self, cache: Any, ignore_mismatch: bool) -> bool:
                record(("set_timing_cache", ignore_mismatch))
                return True

            def get_timing_cache(self) -> TimingCache:
                return TimingCache()

        class Builder:
            def __init__(self, logger: Any) -> None:
                self.logger = logger

            def create_network(self, *flags: int) -> object:
                record(("create_network", *flags))  # ("create_network",) when called with no flags
                return object()

            def create_builder_config(self) -> Config:
                return Config()

            def create_optimization_profile(self) -> Profile:
                return Profile()

            def build_serialized_network(self, network: Any, config: Any) -> bytes | None:
                record(("build_serialized_network",))
                if build_fails:
                    self.logger.log(stand_in.ILogger.Severity.ERROR, "[NotTensorRT] out of memory (recorded)")
                    return None
                return NotTensorRT.PLAN

        self.Builder = Builder
