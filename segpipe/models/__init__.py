"""Models: the factory, the checkpoint contract, size rules and the deployed network.

One module per concern, importable from here as before (``from segpipe.models import X``):

* :mod:`~segpipe.models.factory`: ``create_model`` (a lookup delegating to ``smp.create_model``),
  architecture / encoder / combination checks, encoder weights, ``load_model`` and
  ``describe_bare`` (a bare state_dict described by flags);
* :mod:`~segpipe.models.checkpoint`: the checkpoint file (``save_checkpoint``,
  ``load_checkpoint``; its ``model_info`` goes through the declared schema of
  :mod:`segpipe.schema.files` both ways);
* :mod:`~segpipe.models.sizes`: the input sizes a model takes (output stride, minimum, fixed);
* :mod:`~segpipe.models.deploy`: ``Normalize`` and ``DeployModel``, what export-onnx exports.

Arrows point one way: factory -> checkpoint; sizes and deploy stand alone.
"""

from __future__ import annotations

from segpipe.models.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    Checkpoint,
    head_classes,
    load_checkpoint,
    save_checkpoint,
)
from segpipe.models.deploy import OUTPUT_KINDS, DeployModel, Normalize
from segpipe.models.factory import (
    DEFAULT_ARCH,
    DEFAULT_ENCODER,
    architectures,
    check_combination,
    check_encoder,
    create_model,
    describe_bare,
    hub_unreachable,
    load_model,
    preprocessing_params,
    resolve_arch,
)
from segpipe.models.sizes import (
    SizeRule,
    check_model_size,
    model_label,
    output_stride,
    size_problem,
    size_rule,
)

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "Checkpoint",
    "DEFAULT_ARCH",
    "DEFAULT_ENCODER",
    "DeployModel",
    "Normalize",
    "OUTPUT_KINDS",
    "SizeRule",
    "architectures",
    "check_combination",
    "check_encoder",
    "check_model_size",
    "create_model",
    "describe_bare",
    "head_classes",
    "hub_unreachable",
    "load_checkpoint",
    "load_model",
    "model_label",
    "output_stride",
    "preprocessing_params",
    "resolve_arch",
    "save_checkpoint",
    "size_problem",
    "size_rule",
]
