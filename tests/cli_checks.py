"""What every ``nevseg`` error must look like on stderr: one line, no traceback."""

from __future__ import annotations


def stderr_line(capsys) -> str:
    """The single ``nevseg: ...`` line the command printed on stderr (fails on a traceback or
    on more than one line)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {lines!r}"
    assert lines[0].startswith("nevseg:")
    return lines[0]
