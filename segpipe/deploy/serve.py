"""The model behind ``segpipe serve``: one runner, a dynamic batcher, request checks and counters.

Requests (each one or more RGB images) go into one queue; a worker thread takes the first waiting
request, then more, until ``max_batch`` images are gathered or ``max_delay_ms`` has passed since
the first, runs them through the same path as ``segpipe visualize`` (each image resized to the
network size, the model, the class map resized back to the image's size: ``predict_arrays``) and
hands each request its class maps. So concurrent clients share model calls, and each answer equals
what ``visualize`` draws for that image.

The request tensor is ``IMAGE``: UINT8, N x H x W x 3 (RGB); the answer ``CLASS_MAP``: INT32,
N x H x W, class ids. Anything else is one :class:`RequestError` line saying what was expected.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from segpipe.errors import SegpipeError

INPUT, OUTPUT = "IMAGE", "CLASS_MAP"
#: Largest image side and request size a server accepts (checked before anything is allocated).
MAX_SIDE = 16384
MAX_REQUEST_BYTES = 256 << 20


class RequestError(SegpipeError):
    """A bad request: one line for the client (HTTP 400)."""


@dataclass
class Stats:
    """Counters for /metrics and the benchmark (guarded by the service's lock)."""

    requests: int = 0
    failures: int = 0
    images: int = 0
    batches: int = 0
    #: images per model call -> how many calls had that many.
    batch_sizes: dict[int, int] = field(default_factory=dict)
    queue_us: float = 0.0
    compute_us: float = 0.0


@dataclass
class _Pending:
    images: list[np.ndarray]
    future: Future
    queued: float


class ModelService:
    """A model file served with dynamic batching (see the module docstring); thread-safe."""

    def __init__(
        self,
        model: str | Path,
        name: str | None = None,
        max_batch: int = 8,
        max_delay_ms: float = 5.0,
        device: str = "auto",
        normalization: tuple[Any, Any] = (None, None),
    ) -> None:
        from segpipe.runtime.base import load_runner

        if max_batch < 1:
            raise SegpipeError(f"--max-batch {max_batch}: must be at least 1")
        if max_delay_ms < 0:
            raise SegpipeError(f"--max-delay-ms {max_delay_ms}: must be 0 or more")
        self.path = Path(model)
        self.name = name or self.path.stem
        self.max_batch = max_batch
        self.max_delay = max_delay_ms / 1000.0
        mean, std = normalization  # --mean/--std: a model without segpipe metadata
        self.runner = load_runner(self.path, device=device, mean=mean, std=std)
        self.info = self.runner.info
        self.stats = Stats()
        self._lock = threading.Lock()
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._worker = threading.Thread(target=self._run, name="segpipe-batcher", daemon=True)
        self._worker.start()

    # ---- requests --------------------------------------------------------------------------------
    def check_images(self, array: np.ndarray) -> list[np.ndarray]:
        """``IMAGE`` (N x H x W x 3 uint8) -> the N images; one line when it is anything else."""
        if array.dtype != np.uint8:
            raise RequestError(f"{INPUT}: datatype {array.dtype} given; send UINT8 RGB pixels")
        if array.ndim != 4 or array.shape[-1] != 3:
            raise RequestError(f"{INPUT}: shape {list(array.shape)} given; send N x H x W x 3 (RGB)")
        n, h, w, _ = array.shape
        if n < 1 or h < 1 or w < 1 or max(h, w) > MAX_SIDE:
            raise RequestError(
                f"{INPUT}: shape {list(array.shape)}; N, H and W from 1, sides up to {MAX_SIDE}"
            )
        if n > self.max_batch:
            raise RequestError(f"{INPUT}: batch {n} is more than this server's --max-batch {self.max_batch}")
        return list(array)

    def infer(self, images: list[np.ndarray], timeout: float = 300.0) -> list[np.ndarray]:
        """Class maps for ``images`` (each H x W x 3 uint8), batched with other callers'."""
        fut: Future = Future()
        self._queue.put(_Pending(images, fut, time.perf_counter()))
        try:
            maps = fut.result(timeout=timeout)
        except Exception:
            with self._lock:
                self.stats.failures += 1
            raise
        with self._lock:
            self.stats.requests += 1
        return maps

    # ---- the batcher -----------------------------------------------------------------------------
    def _gather(self, first: _Pending) -> tuple[list[_Pending], bool]:
        batch, count, stop = [first], len(first.images), False
        deadline = first.queued + self.max_delay
        while count < self.max_batch:
            wait = deadline - time.perf_counter()
            try:
                item = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                stop = True
                break
            if count + len(item.images) > self.max_batch:
                self._queue.put(item)  # next batch (order among waiting requests is not promised)
                break
            batch.append(item)
            count += len(item.images)
        return batch, stop

    def _run(self) -> None:
        from segpipe.runtime.pipeline import predict_arrays

        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, stop = self._gather(first)
            images = [img for p in batch for img in p.images]
            start = time.perf_counter()
            try:
                maps = predict_arrays(self.runner, images, batch_size=len(images))
            except Exception as e:  # the requests fail, the server goes on
                for p in batch:
                    p.future.set_exception(e)
            else:
                done = time.perf_counter()
                with self._lock:
                    s = self.stats
                    s.batches += 1
                    s.images += len(images)
                    s.batch_sizes[len(images)] = s.batch_sizes.get(len(images), 0) + 1
                    s.queue_us += sum(start - p.queued for p in batch) * 1e6
                    s.compute_us += (done - start) * 1e6
                i = 0
                for p in batch:
                    k = len(p.images)
                    p.future.set_result([m.astype(np.int32) for m in maps[i : i + k]])
                    i += k
            if stop:
                return

    def close(self) -> None:
        """Finish the requests already queued, stop the worker, free the runner."""
        self._queue.put(None)
        self._worker.join(timeout=60)
        while True:  # anything queued behind the stop marker fails instead of hanging
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item.future.set_exception(RequestError("the server is shutting down"))
        self.runner.close()

    def metrics_text(self) -> str:
        """The counters in Prometheus text format (names after Triton's ``nv_inference_*``)."""
        with self._lock:
            s = self.stats
            # a label value escapes backslashes, quotes and newlines (Prometheus text format)
            model = self.name.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
            label = f'{{model="{model}",version="1"}}'
            lines = [
                ("nv_inference_request_success", "counter", s.requests),
                ("nv_inference_request_failure", "counter", s.failures),
                ("nv_inference_count", "counter", s.images),
                ("nv_inference_exec_count", "counter", s.batches),
                ("nv_inference_queue_duration_us", "counter", int(s.queue_us)),
                ("nv_inference_compute_infer_duration_us", "counter", int(s.compute_us)),
            ]
            out = []
            for metric, kind, value in lines:
                out += [f"# TYPE {metric} {kind}", f"{metric}{label} {value}"]
            out.append("# TYPE segpipe_batch_size_total counter")
            for size, n in sorted(s.batch_sizes.items()):
                out.append(f'segpipe_batch_size_total{{model="{model}",size="{size}"}} {n}')
        return "\n".join(out) + "\n"

    def metadata(self) -> dict[str, Any]:
        """KServe v2 model metadata."""
        return {
            "name": self.name,
            "versions": ["1"],
            "platform": f"segpipe_{self.runner.backend}",
            "inputs": [{"name": INPUT, "datatype": "UINT8", "shape": [-1, -1, -1, 3]}],
            "outputs": [{"name": OUTPUT, "datatype": "INT32", "shape": [-1, -1, -1]}],
        }

    def config(self) -> dict[str, Any]:
        """What ``/v2/models/NAME/config`` answers: Triton's config fields that apply."""
        info = self.info
        return {
            "name": self.name,
            "max_batch_size": self.max_batch,
            "dynamic_batching": {"max_queue_delay_microseconds": int(self.max_delay * 1e6)},
            "input": [{"name": INPUT, "data_type": "TYPE_UINT8", "dims": [-1, -1, 3]}],
            "output": [{"name": OUTPUT, "data_type": "TYPE_INT32", "dims": [-1, -1]}],
            "parameters": {
                "classes": {"string_value": ",".join(info.class_names)},
                "model_file": {"string_value": str(self.path)},
            },
        }
