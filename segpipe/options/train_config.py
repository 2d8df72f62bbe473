"""``train --config FILE.yaml``: TrainOptions from a config file overlaid with the flags typed.

The file is read through the declared schema (:func:`segpipe.options.load_config`); a flag typed on
the command line wins over the file; a file cannot switch on code execution (convention 12:
``trust_checkpoint`` in it is ignored with a warning, ``dataset`` must be repeated as a flag); a
value refused by its flag name is said with the file and line it came from.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from segpipe.errors import ConfigError
from segpipe.options.train import TrainOptions


def train_options(config: Path | None, typed: dict[str, Any], warn: Callable[[str], None]) -> TrainOptions:
    """TrainOptions from ``config`` (if any) overlaid with ``typed``, the flags typed on the command
    line; ``warn`` says what the file asked for and was not given."""
    from segpipe.options import load_config

    values = load_config(config) if config is not None else {}
    if not os.environ.get("SEGPIPE_LAUNCHED"):  # launch.LAUNCHED_ENV: the launcher's own config is trusted
        _command_line_only(config, values, typed, warn)
    from_file = set(values) - set(typed)
    values.update(typed)
    if values.get("data_root") is None:
        raise ConfigError("--data-root is required (on the command line or in --config)")
    try:
        return TrainOptions(**values)
    except ConfigError as e:  # a choice refused by its flag name: say the file and line it came from
        raise _from_config(e, config, from_file) from None


def _from_config(error: Exception, config: Path | None, from_file: set[str]) -> Exception:
    """``--optimizer adamx: use one of ...`` -> ``c.yaml line 3: optimizer adamx: use one of ...``
    when that value was written in the config file, not typed as a flag."""
    from segpipe.schema.options import config_where

    text = str(error)
    head = text.split(" ", 1)[0]
    name = head[2:].replace("-", "_") if head.startswith("--") else ""
    if config is None or name not in from_file:
        return error
    return ConfigError(f"{config_where(config, name)} {text.split(' ', 1)[1]}")


def _command_line_only(
    config: Path | None, values: dict[str, Any], typed: dict[str, Any], warn: Callable[[str], None]
) -> None:
    """A config file cannot switch on code execution: ``trust_checkpoint`` in it is ignored (with
    a warning), ``dataset`` in it must be repeated on the command line."""
    from segpipe.options import COMMAND_LINE_ONLY

    if values.pop("trust_checkpoint", None) and "trust_checkpoint" not in typed:
        warn(
            f"{config}: trust_checkpoint ignored: a config file cannot allow unpickling; pass "
            "--trust-checkpoint on the command line if you trust the checkpoint"
        )
    spec = values.pop("dataset", None)
    if spec and "dataset" not in typed:
        flag = COMMAND_LINE_ONLY["dataset"].split(" ")[0]
        raise ConfigError(
            f"{config}: dataset: {spec} would import and run Python code, which a config file cannot "
            f"switch on; pass {flag} {spec} on the command line if you trust it"
        )
