"""Speed switches of a training run and how the model is wrapped for them.

Opt-in or CUDA-only (channels-last aside, on by default everywhere), so a CPU run is the plain
float32 loop:

* ``--amp`` with ``--amp-dtype fp16`` (autocast + GradScaler) or ``bf16`` (autocast only);
* the memory layout of weights and batches (:func:`memory_format`): channels-last on CUDA (faster
  convolutions, above all with AMP), contiguous NCHW on the CPU (as fast or faster there, and
  oneDNN's channels-last weight gradient crashes some encoders on AVX-512 CPUs); ``--channels-last``
  / ``--no-channels-last`` force one;
* ``cudnn.benchmark`` on CUDA unless ``--deterministic``;
* fused Adam/AdamW on CUDA (with fp16 the scaler's inf check then stays on the GPU: no host sync);
* ``--compile``: ``torch.compile`` of the model (of the DDP wrapper in a distributed run);
* ``--sync-bn``: SyncBatchNorm across processes (CUDA only; torch's SyncBatchNorm has no CPU path).
"""

from __future__ import annotations

import os

import torch
from torch import nn

from segpipe.errors import ConfigError
from segpipe.options import TrainOptions
from segpipe.progress import Reporter
from segpipe.training.distributed import DistEnv

AMP_TORCH_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def configure_backends(opts: TrainOptions, device: torch.device) -> None:
    """cuDNN autotuning, or deterministic kernels with ``--deterministic``."""
    if device.type != "cuda":
        return
    if opts.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def amp_dtype(opts: TrainOptions, device: torch.device, reporter: Reporter) -> torch.dtype | None:
    """The autocast dtype, or None for float32 (``--amp`` off, or not on CUDA: warned)."""
    if not opts.amp:
        return None
    if device.type != "cuda":
        reporter.warn("--amp needs CUDA; training in float32 on the CPU")
        return None
    if opts.amp_dtype == "bf16" and not torch.cuda.is_bf16_supported():
        name = torch.cuda.get_device_name(device)
        raise ConfigError(f"--amp-dtype bf16: {name} does not support bfloat16; use fp16")
    return AMP_TORCH_DTYPES[opts.amp_dtype]


def _avx512() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            return "avx512f" in f.read()
    except OSError:
        return False


#: Encoders whose channels-last training dies in oneDNN on AVX-512 CPUs (SIGSEGV / SIGABRT in the
#: weight gradient of their 1x1 stride-2 convolutions; contiguous input trains).
CPU_CHANNELS_LAST_CRASHES = ("mobileone",)


def memory_format(opts: TrainOptions, device: torch.device) -> torch.memory_format:
    """The layout of the weights and input batches: ``opts.channels_last`` when given, else
    channels-last on CUDA and contiguous on the CPU. Channels-last asked for on an AVX-512 CPU with
    an encoder known to crash oneDNN there is refused in one line (rather than a dead process)."""
    wanted = opts.channels_last if opts.channels_last is not None else device.type == "cuda"
    if not wanted:
        return torch.contiguous_format
    if (
        device.type == "cpu"
        and any(k in opts.encoder.lower() for k in CPU_CHANNELS_LAST_CRASHES)
        and _avx512()
    ):
        raise ConfigError(
            f"--channels-last with --encoder {opts.encoder} on this AVX-512 CPU: oneDNN's channels-last "
            "backward crashes the process for it; drop --channels-last (the CPU default is contiguous)"
        )
    return torch.channels_last


class LaidOutNormalize(nn.Module):
    """``Normalize`` (NHWC pixels -> normalised N×3×H×W) whose output has the chosen memory layout
    (the permute alone leaves channels-last memory, whatever the model's layout)."""

    def __init__(self, normalize: nn.Module, fmt: torch.memory_format) -> None:
        super().__init__()
        self.inner = normalize
        self.fmt = fmt

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x).contiguous(memory_format=self.fmt)


def prepare_model(net: nn.Module, opts: TrainOptions, env: DistEnv, reporter: Reporter) -> nn.Module:
    """SyncBatchNorm, device, memory format: the bare network as it will be trained."""
    if opts.sync_bn:
        if env.device.type != "cuda":
            raise ConfigError(
                f"--sync-bn needs CUDA (torch's SyncBatchNorm has no CPU path); device is {env.device}"
            )
        if env.distributed:
            net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
        else:
            reporter.info("--sync-bn: one process, nothing to synchronise; plain BatchNorm")
    net = net.to(env.device)
    return net.to(memory_format=memory_format(opts, env.device))


def wrap_model(net: nn.Module, opts: TrainOptions, env: DistEnv) -> tuple[nn.Module, nn.Module]:
    """(training model, evaluation model): DDP and/or torch.compile around ``net`` as asked.

    Evaluation runs on each rank's shard with the bare (or compiled) network, never through DDP,
    so ranks with unequal shards never wait for one another.
    """
    model: nn.Module = net
    if env.distributed:
        ids = [env.device.index] if env.device.type == "cuda" else None
        model = nn.parallel.DistributedDataParallel(net, device_ids=ids, gradient_as_bucket_view=True)
    if not opts.compile:
        return model, net
    compiled = torch.compile(model)
    return compiled, (compiled if model is net else torch.compile(net))


def make_optimizer(opts: TrainOptions, model: nn.Module, device: torch.device) -> torch.optim.Optimizer:
    """AdamW (default), Adam or SGD with momentum; fused kernels on CUDA."""
    params = [p for p in model.parameters() if p.requires_grad]
    if opts.optimizer == "sgd":
        return torch.optim.SGD(params, lr=opts.lr, momentum=0.9, weight_decay=opts.weight_decay)
    fused = {"fused": True} if device.type == "cuda" else {}
    if opts.optimizer == "adam":
        return torch.optim.Adam(params, lr=opts.lr, weight_decay=opts.weight_decay, **fused)
    return torch.optim.AdamW(params, lr=opts.lr, weight_decay=opts.weight_decay, **fused)


def make_scheduler(
    opts: TrainOptions, optimizer: torch.optim.Optimizer
) -> torch.optim.lr_scheduler.LRScheduler:
    """Stepped once per epoch."""
    if opts.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=opts.epochs, eta_min=opts.lr * 0.01
        )
    if opts.scheduler == "poly":
        return torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=opts.epochs, power=0.9)
    return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
