"""torch.distributed for training: one process per GPU (``nccl``) or per CPU share (``gloo``).

A training process learns its place from the environment variables ``torchrun`` (and
:func:`segpipe.training.launch.launch`, which drives torch's own elastic launcher) sets: ``RANK``,
``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``/``MASTER_PORT``. Without them it is the only
process and nothing here talks to anyone.

Rules the training loop follows with these helpers:

* every rank runs the same steps in the same order (DistributedDataParallel all-reduces gradients);
* decisions that change the control flow (stop, skip a batch, resume from where) are taken once
  for all: reduced across ranks or decided by rank 0 and broadcast;
* only rank 0 writes files and reports; the others get a silent reporter.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from segpipe.errors import ConfigError, SegpipeError
from segpipe.utils import resolve_device

T = TypeVar("T")


class PeerError(SegpipeError):
    """Raised on ranks other than 0 when the failure is reported by rank 0 (the message would be a
    duplicate there); the CLI exits non-zero without printing it."""

    collective = True


@dataclass(frozen=True)
class DistEnv:
    """Where this process stands: its rank, the world size, its device and backend."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    backend: str | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    #: This process created the process group (and destroys it in :func:`teardown`).
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files and reports."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    # ---- collectives (no-ops in a single process) ---------------------------------------------
    def all_reduce(self, tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
        """Reduce ``tensor`` in place across ranks (``sum``, ``max`` or ``min``) and return it."""
        if self.distributed:
            ops = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}
            dist.all_reduce(tensor, op=ops[op])
        return tensor

    def broadcast(self, obj: T) -> T:
        """Rank 0's ``obj`` on every rank (any picklable value)."""
        if not self.distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def sync_buffers(self, module: torch.nn.Module) -> None:
        """Give every rank rank 0's buffers (BatchNorm running statistics). DDP broadcasts them at
        the start of each training forward, but each rank's last forward then updates its own
        copy: without this, ranks would validate slightly different models from the one saved."""
        if self.distributed:
            for buf in module.buffers():
                dist.broadcast(buf, src=0)

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on at least one."""
        if not self.distributed:
            return bool(flag)
        t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=self.device)
        return bool(self.all_reduce(t, "max").item())

    def _attempt(self, fn: Callable[[], T], here: bool = True) -> tuple[Any, SegpipeError | None]:
        """(``fn()``, None) on a rank where ``here``, (None, the :class:`SegpipeError` it raised)
        when it failed; in a single process the error is raised at once."""
        result: Any = None
        error: SegpipeError | None = None
        if here:
            try:
                result = fn()
            except SegpipeError as e:
                error = e
        if error is not None and not self.distributed:
            raise error
        return result, error

    def decide(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on rank 0 only and hand its result to every rank; a :class:`SegpipeError`
        there is raised on rank 0 and turns into a :class:`PeerError` elsewhere."""
        result, error = self._attempt(fn, self.is_main)
        if not self.distributed:
            return result
        result, message = self.broadcast((result, None if error is None else str(error)))
        if message is not None:
            if error is not None:
                raise error
            raise PeerError(f"[rank {self.rank}] stopped: rank 0 failed: {message}")
        return result

    def agree(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on every rank; if it raised a :class:`SegpipeError` on any rank, every rank
        raises: rank 0 the first error (naming the rank it came from), the others a
        :class:`PeerError`. Keeps N processes from printing the same bad-input line N times and
        keeps the healthy ranks from waiting for a peer that gave up."""
        result, error = self._attempt(fn)
        if not self.distributed:
            return result
        messages: list[str | None] = [None] * self.world_size
        dist.all_gather_object(messages, None if error is None else str(error))
        failed = [(r, m) for r, m in enumerate(messages) if m is not None]
        if failed:
            rank, message = failed[0]
            if not self.is_main:
                raise PeerError(f"[rank {self.rank}] stopped: rank {rank} failed: {message}")
            if rank == 0 and error is not None:
                raise error
            raise SegpipeError(f"[rank {rank}] {message}")
        return result


def is_comm_error(exc: BaseException) -> bool:
    """A failed collective: usually a peer process died (its own error tells why)."""
    if isinstance(exc, dist.DistError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and any(
        s in text
        for s in ("gloo", "NCCL", "Connection reset by peer", "Connection closed by peer", "ProcessGroup")
    )


def world_from_env() -> tuple[int, int, int]:
    """(rank, local rank, world size) from the variables torchrun sets; (0, 0, 1) without them."""
    return (
        int(os.environ.get("RANK", 0)),
        int(os.environ.get("LOCAL_RANK", 0)),
        int(os.environ.get("WORLD_SIZE", 1)),
    )


def restart_count() -> int:
    """How often torch elastic restarted this job's processes (``--max-restarts``); 0 otherwise."""
    try:
        return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)
    except ValueError:
        return 0


def setup(device_spec: str = "auto") -> DistEnv:
    """Join the process group torchrun describes (``nccl`` on CUDA, ``gloo`` on CPU).

    Each process takes ``cuda:LOCAL_RANK``; pick the GPUs with ``CUDA_VISIBLE_DEVICES``. A single
    process (no torchrun variables, or ``WORLD_SIZE=1``) gets the device ``device_spec`` names.
    """
    rank, local_rank, world = world_from_env()
    device = resolve_device(device_spec)
    if world <= 1:
        return DistEnv(device=device)
    if device.type == "cuda":
        if device.index is not None:
            raise ConfigError(
                f"--device {device_spec}: with several processes each one takes cuda:LOCAL_RANK; "
                "pass --device cuda and choose the GPUs with CUDA_VISIBLE_DEVICES"
            )
        visible = torch.cuda.device_count()
        if local_rank >= visible:
            raise ConfigError(
                f"process {local_rank} of this machine has no GPU: only {visible} visible; "
                f"start at most {visible} processes per machine (--devices / --nproc-per-node)"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    owns = False
    if not dist.is_initialized():
        _init_process_group(backend, device)
        owns = True
    return DistEnv(
        rank=rank, local_rank=local_rank, world_size=world, backend=backend, device=device, owns_group=owns
    )


def _init_process_group(backend: str, device: torch.device) -> None:
    """``init_process_group`` from torchrun's variables, isolated per elastic restart.

    torchrun's workers share the launcher's TCP store by default, and it outlives a restart: the
    keys the previous attempt's processes wrote (a peer's address) are still there, so a
    restarted process can read a dead peer's address and fail to connect (seen here with gloo;
    pytorch/pytorch#135712 for nccl). On one machine every process agrees on the restart count,
    so the store is prefixed with it. Across machines the counts can differ (a machine restarted
    for a peer's failure does not count it), so there the fix is torch's own switch
    ``TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1``; a warning says so.
    """
    device_id = device if device.type == "cuda" else None
    restarts = restart_count()
    shared = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    if restarts == 0 or not shared:
        dist.init_process_group(backend=backend, device_id=device_id)
        return
    if int(os.environ.get("GROUP_WORLD_SIZE", "1")) > 1:
        if int(os.environ.get("RANK", 0)) == 0:
            warnings.warn(
                "restarted multi-machine job on torchrun's shared store: if the processes cannot connect, "
                "export TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 before torchrun",
                stacklevel=2,
            )
        dist.init_process_group(backend=backend, device_id=device_id)
        return
    from torch.distributed.rendezvous import rendezvous

    store, rank, world = next(rendezvous("env://"))
    store = dist.PrefixStore(f"segpipe/attempt-{restarts}", store)
    dist.init_process_group(backend=backend, store=store, rank=rank, world_size=world, device_id=device_id)


def teardown(env: DistEnv) -> None:
    """Leave the process group this process created."""
    if env.owns_group and dist.is_initialized():
        with contextlib.suppress(Exception):
            dist.destroy_process_group()


class ShardSampler(Sampler[int]):
    """Every index exactly once over all ranks (rank r takes r, r + world, ...), with no padding.

    For validation: torch's DistributedSampler repeats samples to even the ranks out, which would
    count those images twice in the all-reduced metrics.
    """

    def __init__(self, length: int, rank: int = 0, world_size: int = 1) -> None:
        self.indices = list(range(rank, length, world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)
