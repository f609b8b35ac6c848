"""One-line notes to the user on stderr: things rlcanon did that the user should know about (a
checkpoint pointer repaired, a budget rounded up, a torn metrics row dropped); and the one-line
advice that goes with a failed file operation (:func:`os_error_hint`)."""

from __future__ import annotations

import errno
import sys

_HINTS = {
    errno.ENOSPC: "the disk is full; free some space",
    errno.EDQUOT: "the disk quota is used up; free some space",
    errno.EFBIG: "a file size limit, such as ulimit -f, was reached",
    errno.EACCES: "no permission; make it writable or choose another --run-dir",
    errno.EPERM: "no permission; make it writable or choose another --run-dir",
    errno.EROFS: "the file system is read-only; choose another --run-dir",
    errno.ENOTDIR: "a part of the path is a file, not a directory; choose another --run-dir",
    errno.ENAMETOOLONG: "the path is too long; choose a shorter --run-dir",
}


def os_error_hint(exc: OSError) -> str:
    """``strerror`` of a failed file operation with what the user can do about it, on one line."""
    what = exc.strerror or str(exc) or type(exc).__name__
    hint = _HINTS.get(exc.errno or 0)
    return f"{what} ({hint})" if hint else what


def note(message: str) -> None:
    text = " ".join(str(message).split())  # one line, always
    print(f"rlcanon: note: {text}", file=sys.stderr, flush=True)
