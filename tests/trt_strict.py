"""Strict proxies generated from NVIDIA's real compiled bindings, for checking segpipe's calls on CPU.

:class:`StrictTensorRT` wraps the real ``tensorrt_bindings`` module of one TensorRT version (imported
with stub ``libnvinfer``/``libnvonnxparser``/``libnvinfer_plugin`` libraries, see
``tests/trt_bindings.py``). Nothing is built or run; every name segpipe uses is checked against the
real module instead:

* a module attribute must exist on the real module; classes that work without the TensorRT
  libraries (``ILogger``, ``Logger``, ``Dims``, enums, plain functions such as ``nptype``) are
  handed out as the real objects, classes whose objects the libraries create (``Builder``,
  ``Runtime``, ``OnnxParser``, ...) as :class:`StrictClass`;
* an attribute read on a proxied object must exist on that version's real class; a property read
  returns a value of the type its getter's signature names; a property write must match its
  setter's signature;
* a call must match one of the pybind11 overload signatures in the real method's ``__doc__``:
  argument count, keyword names, and the type where the signature names a Python type
  (``str``, ``int``/``typing.SupportsInt``, ``bool``, ``float``, buffers), a TensorRT enum (the
  value must be a member of the real enum) or a TensorRT class (a proxy of that class or a real
  instance; ``Dims`` arguments are converted with the real ``Dims`` constructor);
* the result is a proxy of the return type the signature names, or a value a scenario supplies
  (checked against that type too).

A mismatch raises :class:`BindingsMismatch` (a ``TypeError``) and is recorded in
``StrictTensorRT.mismatches``. Every call is recorded in ``StrictTensorRT.calls`` as
``("Class.method", args)``.

:class:`StrictCudaRuntime` does the same for cuda-python's runtime module: each call is first made
against the real function's signature (count, keywords, and the types its annotations name), then,
on a machine without a driver, on the real function itself (cython checks the argument types and
returns an error code), and answered with ``cudaSuccess`` and a stand-in value.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

_SIG = re.compile(r"^(?:\d+\. )?(?P<name>\w+)?\((?P<params>.*)\) -> (?P<ret>.+)$")
_PY_TYPES = {"str", "int", "bool", "float", "typing.SupportsInt", "typing.SupportsFloat"}
_BUFFER_TYPES = {"buffer", "typing_extensions.Buffer", "collections.abc.Buffer"}


class BindingsMismatch(TypeError):
    """segpipe called something with arguments no signature of the real bindings takes."""


class MissingName(AttributeError):
    """segpipe read a name the real bindings do not have (``getattr(obj, name, default)`` may catch it)."""


class Param:
    """One parameter of a pybind11 signature."""

    def __init__(self, text: str) -> None:
        head, _, default = text.partition(" = ")
        name, _, annotation = head.partition(": ")
        self.name = name.strip()
        self.type = annotation.strip()
        self.has_default = bool(default)
        self.star = self.name.startswith("*")

    def __repr__(self) -> str:
        return f"{self.name}: {self.type}{' = ...' if self.has_default else ''}"


class Signature:
    """One pybind11 overload: ``name(self: T, a: X = d, ...) -> R``."""

    def __init__(self, params: list[Param], ret: str, text: str) -> None:
        self.params, self.ret, self.text = params, ret, text


def _split_params(text: str) -> list[str]:
    parts, depth, current = [], 0, []
    for ch in text:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    if "".join(current).strip():
        parts.append("".join(current).strip())
    return parts


def signatures(doc: str | None, name: str | None = None) -> list[Signature]:
    """Every overload signature in a pybind11 ``__doc__`` (the ``(*args, **kwargs)`` header dropped)."""
    sigs = []
    for line in (doc or "").splitlines():
        m = _SIG.match(line.strip())
        if not m or (name and m.group("name") not in (None, name)):
            continue
        params = [Param(p) for p in _split_params(m.group("params"))]
        if any(p.star for p in params):
            continue  # the "name(*args, **kwargs)" header of an overloaded function
        sigs.append(Signature(params, m.group("ret").strip(), line.strip()))
    return sigs


class StrictTensorRT:
    """The ``tensorrt`` module as segpipe sees it, backed by the real ``tensorrt_bindings``."""

    def __init__(self, real: Any, scenario: dict[str, Any] | None = None) -> None:
        self._real = real
        self.__version__ = str(real.__version__)
        self.scenario: dict[str, Any] = dict(scenario or {})
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.mismatches: list[str] = []
        self.missing: list[str] = []
        self.unchecked: set[str] = set()
        self._classes: dict[str, StrictClass] = {}

    # ---- module attributes ---------------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if not hasattr(self._real, name):
            self.missing_name(f"tensorrt {self.__version__} has no attribute {name!r}")
        value = getattr(self._real, name)
        if isinstance(value, type) and self._needs_library(value):
            if name not in self._classes:
                self._classes[name] = StrictClass(self, value)
            return self._classes[name]
        return value  # enums, ILogger, Logger, Dims, nptype...: the real objects

    def _needs_library(self, cls: type) -> bool:
        """True for classes whose objects only the TensorRT libraries create."""
        if hasattr(cls, "__members__"):  # a pybind11 enum
            return False
        if cls.__name__ in ("ILogger", "Logger", "Dims", "Dims2", "Dims3", "Dims4", "DimsHW", "Weights"):
            return False
        return True

    # ---- helpers --------------------------------------------------------------------------------
    def missing_name(self, message: str) -> None:
        self.missing.append(message)
        raise MissingName(message)

    def fail(self, message: str) -> None:
        self.mismatches.append(message)
        raise BindingsMismatch(message)

    def real_class(self, dotted: str) -> type | None:
        """``tensorrt_bindings.tensorrt.Dims`` -> the real class (``None`` when not a TensorRT type)."""
        prefix = "tensorrt_bindings.tensorrt."
        if not dotted.startswith(prefix):
            return None
        obj: Any = self._real
        for part in dotted[len(prefix) :].split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                return None
        return obj if isinstance(obj, type) else None

    def accepts(self, type_text: str, value: Any) -> bool:
        """Whether pybind11 would accept ``value`` for a parameter annotated ``type_text``."""
        t = type_text.strip()
        m = re.fullmatch(r"(?:typing\.)?Optional\[(.*)\]", t)
        if m:
            return value is None or self.accepts(m.group(1), value)
        if t in ("str",):
            return isinstance(value, str)
        if t in ("bool",):
            return isinstance(value, bool)
        if t in ("int", "typing.SupportsInt"):
            return not isinstance(value, float) and hasattr(value, "__index__")
        if t in ("float", "typing.SupportsFloat"):
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        if t in _BUFFER_TYPES:
            try:
                memoryview(value)
            except TypeError:
                return False
            return True
        if t in ("tuple", "list"):
            return isinstance(value, tuple if t == "tuple" else list)
        cls = self.real_class(t)
        if cls is None:
            self.unchecked.add(t)
            return True  # typing.List[...], numpy.ndarray, object...: not checked
        if isinstance(value, StrictObject):
            return issubclass(value._cls, cls)
        if isinstance(value, cls):
            return True
        if cls.__name__.startswith("Dims") and isinstance(value, (tuple, list)):
            try:
                cls(value)  # the real implicit conversion
            except TypeError:
                return False
            return True
        return False

    def bind(
        self, where: str, sigs: list[Signature], args: tuple, kwargs: dict, skip_self: bool
    ) -> Signature:
        """The first overload ``args``/``kwargs`` match; BindingsMismatch naming every overload if none."""
        if not sigs:
            self.unchecked.add(where)
            return Signature([], "object", "")
        reasons = []
        for sig in sigs:
            params = sig.params[1:] if skip_self else sig.params
            why = self._match(params, args, kwargs)
            if why is None:
                return sig
            reasons.append(f"{sig.text.split(' -> ')[0]}: {why}")
        shown = ", ".join([*map(_short, args), *(f"{k}={_short(v)}" for k, v in kwargs.items())])
        self.fail(
            f"tensorrt {self.__version__} {where}({shown}) matches no signature: " + " | ".join(reasons)
        )
        raise AssertionError  # unreachable: fail raises

    def _match(self, params: list[Param], args: tuple, kwargs: dict) -> str | None:
        if len(args) > len(params):
            return f"{len(args)} positional arguments, at most {len(params)} taken"
        bound: dict[str, Any] = {}
        for p, a in zip(params, args, strict=False):
            bound[p.name] = a
        for k, v in kwargs.items():
            if k not in {p.name for p in params}:
                return f"no parameter named {k!r}"
            if k in bound:
                return f"{k!r} given twice"
            bound[k] = v
        for p in params:
            if p.name not in bound:
                if not p.has_default:
                    return f"missing argument {p.name!r}"
                continue
            if not self.accepts(p.type, bound[p.name]):
                return f"{p.name}={_short(bound[p.name])} is not a {p.type}"
        return None

    def result(self, key: str, ret: str, args: tuple, kwargs: dict) -> Any:
        """The scenario's value for ``key`` (called with the arguments when callable), else a proxy."""
        if key in self.scenario:
            value = self.scenario[key]
            return self.check_answer(key, ret, value(*args, **kwargs) if callable(value) else value)
        return self.default(ret, key)

    def check_answer(self, key: str, ret: str, value: Any) -> Any:
        """A scenario's value for ``key``, checked against the declared return type ``ret``."""
        if value is None and ret.startswith(("typing.Optional", "Optional")):
            return value
        nullable = {"Builder.build_serialized_network", "Runtime.deserialize_cuda_engine"}
        if value is None and key in nullable:
            return value  # pybind11 returns None for a null pointer; the docs say these can fail
        if ret not in ("None", "object") and not self.accepts(ret, value):
            raise AssertionError(f"test scenario {key} returned {value!r}, not a {ret}")
        return value

    def default(self, ret: str, key: str) -> Any:
        ret = ret.strip()
        m = re.fullmatch(r"(?:typing\.)?Optional\[(.*)\]", ret)
        if m:
            ret = m.group(1)
        if ret == "None":
            return None
        if ret == "bool":
            return True
        if ret in ("int", "typing.SupportsInt"):
            return 0
        if ret == "float":
            return 0.0
        if ret == "str":
            return ""
        cls = self.real_class(ret)
        if cls is not None and not hasattr(cls, "__members__"):
            return StrictObject(self, cls)
        raise AssertionError(f"test scenario needs a value for {key} (returns {ret})")


class StrictClass:
    """A TensorRT class whose objects the library creates: calling it checks ``__init__``'s signature."""

    def __init__(self, trt: StrictTensorRT, cls: type) -> None:
        self._trt, self._cls = trt, cls

    def __getattr__(self, name: str) -> Any:
        if not hasattr(self._cls, name):
            self._trt.missing_name(
                f"tensorrt {self._trt.__version__} {self._cls.__name__} has no attribute {name!r}"
            )
        return getattr(self._cls, name)  # nested enums and the like: real

    def __call__(self, *args: Any, **kwargs: Any) -> StrictObject:
        where = f"{self._cls.__name__}"
        self._trt.bind(where, signatures(self._cls.__init__.__doc__, "__init__"), args, kwargs, True)
        self._trt.calls.append((where, args))
        if where in self._trt.scenario:
            raise self._trt.scenario[where]  # e.g. a constructor that raises without CUDA
        return StrictObject(self._trt, self._cls)


class StrictObject:
    """An object of a real TensorRT class; reads, writes and calls are checked against that class."""

    def __init__(self, trt: StrictTensorRT, cls: type, answers: dict[str, Any] | None = None) -> None:
        object.__setattr__(self, "_trt", trt)
        object.__setattr__(self, "_cls", cls)
        object.__setattr__(self, "_values", {})
        object.__setattr__(self, "_answers", dict(answers or {}))  # this object's own scenario values

    def __repr__(self) -> str:
        return f"<strict {self._cls.__name__}>"

    def __getattr__(self, name: str) -> Any:
        trt, cls = self._trt, self._cls
        key = f"{cls.__name__}.{name}"
        if name in self._values:
            return self._values[name]
        attr = inspect.getattr_static(cls, name, None)
        if attr is None:
            trt.missing_name(f"tensorrt {trt.__version__} {cls.__name__} has no attribute {name!r}")
        if isinstance(attr, property):
            sig = signatures(attr.fget.__doc__)
            ret = sig[0].ret if sig else "object"
            trt.calls.append((key, ()))
            return trt.result(key, ret, (), {})
        sigs = signatures(getattr(attr, "__doc__", ""), name)

        answers = self._answers

        def method(*args: Any, **kwargs: Any) -> Any:
            sig = trt.bind(key, sigs, args, kwargs, True)
            trt.calls.append((key, args + tuple(kwargs.items())))
            if name in answers:
                return trt.check_answer(key, sig.ret, answers[name])
            return trt.result(key, sig.ret, args, kwargs)

        return method

    def __setattr__(self, name: str, value: Any) -> None:
        trt, cls = self._trt, self._cls
        attr = inspect.getattr_static(cls, name, None)
        if not isinstance(attr, property) or attr.fset is None:
            trt.fail(f"tensorrt {trt.__version__} {cls.__name__}.{name} is not a writable property")
        trt.bind(f"{cls.__name__}.{name} =", signatures(attr.fset.__doc__), (value,), {}, True)
        trt.calls.append((f"{cls.__name__}.{name} =", (value,)))
        self._values[name] = value

    def __bytes__(self) -> bytes:
        # IHostMemory exposes Python's buffer protocol (its class docstring says so); segpipe calls bytes().
        if self._cls.__name__ != "IHostMemory":
            raise TypeError(f"bytes() of a {self._cls.__name__}")
        self._trt.calls.append(("bytes(IHostMemory)", ()))
        return self._trt.scenario.get("IHostMemory.bytes", b"PLAN")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class StrictCudaRuntime:
    """cuda-python's runtime module checked against the real one (see the module docstring)."""

    def __init__(self, real: Any, call_real: bool, values: dict[str, Callable[..., tuple]] | None = None):
        self._real = real
        self.call_real = call_real
        self.values = values or {}
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.mismatches: list[str] = []
        self._next_ptr = 0x10000

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if not hasattr(self._real, name):
            self.mismatches.append(f"{self._real.__name__} has no attribute {name!r}")
            raise BindingsMismatch(self.mismatches[-1])
        real = getattr(self._real, name)
        if not callable(real) or isinstance(real, type):
            return real  # enums (cudaMemcpyKind), types (cudaStream_t)

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                signature = inspect.signature(real)
                bound = signature.bind(*args, **kwargs)
            except TypeError as e:
                self.mismatches.append(f"{self._real.__name__}.{name}: {e}")
                raise BindingsMismatch(self.mismatches[-1]) from e
            for pname, value in bound.arguments.items():  # ``kind: 'cudaMemcpyKind'`` names a real type
                want = getattr(self._real, str(signature.parameters[pname].annotation).strip("'\""), None)
                if isinstance(want, type) and not isinstance(value, want):
                    self.mismatches.append(
                        f"{self._real.__name__}.{name}: {pname}={value!r} is not a {want.__name__}"
                    )
                    raise BindingsMismatch(self.mismatches[-1])
            if self.call_real:
                try:
                    real(*args, **kwargs)  # no driver: cython checks the types, then returns an error code
                except (TypeError, ValueError, OverflowError) as e:
                    self.mismatches.append(f"{self._real.__name__}.{name}{args}: {type(e).__name__}: {e}")
                    raise BindingsMismatch(self.mismatches[-1]) from e
            self.calls.append((name, args))
            if name in self.values:
                return self.values[name](*args, **kwargs)
            if name == "cudaMalloc":
                self._next_ptr += 0x10000
                return (self._real.cudaError_t.cudaSuccess, self._next_ptr)
            if name == "cudaStreamCreate":
                return (self._real.cudaError_t.cudaSuccess, self._real.cudaStream_t())
            return (self._real.cudaError_t.cudaSuccess,)

        return call
