"""Code a newcomer can change: no module of the package over 400 lines unless its docstring says
why (a line starting ``Long file:``). Tests and benchmarks are not held to it."""

from __future__ import annotations

import ast
from pathlib import Path

import segpipe

ROOT = Path(segpipe.__file__).parent
LIMIT = 400


def test_no_package_module_over_400_lines_without_a_reason() -> None:
    long = []
    for path in sorted(ROOT.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n") + 1
        if lines <= LIMIT:
            continue
        doc = ast.get_docstring(ast.parse(text)) or ""
        if not any(line.strip().startswith("Long file:") for line in doc.splitlines()):
            long.append(f"{path.relative_to(ROOT.parent)} ({lines} lines)")
    assert not long, "split these modules or say why at the top ('Long file: ...'): " + ", ".join(long)
