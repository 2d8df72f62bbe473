"""Speed switches of a training run and how the model is wrapped for them.

Opt-in or CUDA-only (channels-last aside, on by default everywhere), so a CPU run is the plain
float32 loop:

* ``--amp`` with ``--amp-dtype fp16`` (autocast + GradScaler) or ``bf16`` (autocast only);
* channels-last weights (the inputs already are: ``Normalize`` permutes NHWC to NCHW); faster
  convolutions on CUDA, above all with AMP, and no slower on CPU;
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
    if opts.channels_last:  # the inputs already are (Normalize permutes NHWC batches)
        net = net.to(memory_format=torch.channels_last)
    return net


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
