"""The ``rlcanon`` command. It parses arguments and calls library functions; no algorithm logic."""

from __future__ import annotations

import sys
from typing import Any

from rlcanon.core.threads import default_blas_threads

default_blas_threads()  # before numpy loads: one BLAS thread is fastest for small RL matrices


def main(argv: list[str] | None = None) -> int:
    from rlcanon.cli.commands import build_parser, run_command
    from rlcanon.errors import RLCanonError

    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "command", None) is None:
        parser.print_help()
        return 2
    try:
        return _run_holding_warnings(run_command, args)
    except RLCanonError as exc:
        return _fail(str(exc))
    except OSError as exc:  # an unwritable path, a read-only or full disk: one line, nothing lost
        from rlcanon.run.notes import os_error_hint

        where = " ".join(str(f) for f in (exc.filename, exc.filename2) if f)
        return _fail(f"cannot access {where or 'a file'}: {os_error_hint(exc)}")
    except MemoryError:
        return _fail("out of memory; lower the buffer, batch or network sizes")
    except KeyboardInterrupt:
        message = (
            "rlcanon: interrupted; --resume RUN_DIR continues from the last checkpoint "
            "(a run stopped before its first checkpoint starts again)"
        )
        print(message, file=sys.stderr)
        return 130
    except Exception as exc:
        if type(exc).__name__ != "SafetensorError":
            raise
        # a safetensors file that could not be written (a full disk) or read (a damaged file)
        text = str(exc).splitlines()[0] if str(exc) else "safetensors error"
        return _fail(f"cannot write or read a safetensors file: {text}; check the free space and the file")


def _run_holding_warnings(run_command: Any, args: Any) -> int:
    """Run the command with Python warnings (a numpy overflow on the way to a NaN loss, a library's
    notice) held back: replayed after a success, dropped after a failure, whose one line says what
    went wrong."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        code = run_command(args)
    for w in caught:
        warnings.showwarning(w.message, w.category, w.filename, w.lineno, w.file, w.line)
    return code


def _fail(message: str) -> int:
    text = " ".join(message.split())  # one line, always
    print(f"rlcanon: error: {text}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
