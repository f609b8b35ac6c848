"""One-line notes to the user on stderr: things rlcanon did that the user should know about (a
checkpoint pointer repaired, a budget rounded up, a torn metrics row dropped)."""

from __future__ import annotations

import sys


def note(message: str) -> None:
    print(f"rlcanon: note: {message}", file=sys.stderr, flush=True)
