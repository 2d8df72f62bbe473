"""The one error handler (``cli/common.py: reported_errors``) prints a :class:`SegpipeError` as one
line whatever its message holds: raw line breaks of any kind (a path or a third-party message put in
unescaped) never start a line of their own: a newline is shown as ``\\n`` (a file name holding one is
shown as it is, not as a space), the other control characters escaped too."""

from __future__ import annotations

import pytest
import typer

from segpipe.cli.common import reported_errors
from segpipe.errors import SegpipeError

BREAKS = "a\nerror: one\r\nerror: two\u2028error: three\x85error: four\verror: five\x1b[2J\u202e end"


class Stopped(SegpipeError):
    heading = "stopped"


@pytest.mark.parametrize("cls", [SegpipeError, Stopped])
def test_a_message_with_raw_line_breaks_is_one_escaped_line(
    cls: type, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(typer.Exit) as exc, reported_errors():
        raise cls(BREAKS)
    assert exc.value.exit_code == 1
    out = capsys.readouterr()
    assert out.out == ""
    lines = out.err.splitlines()  # str.splitlines breaks at \r, \v, \x85, \u2028 too
    assert len(lines) == 1 and lines[0].startswith(f"{cls.heading}: a"), lines
    assert lines[0].endswith(" end") and "error: five" in lines[0]
    for raw in ("\x1b", "\r", "\v", "\x85", "\u2028", "\u202e"):
        assert raw not in lines[0]
    assert lines[0].startswith(f"{cls.heading}: a\\nerror: one")  # the newline shown, escaped
    assert "\\x1b[2J" in lines[0] and "\\u202e" in lines[0]  # shown, not acted on
