"""The ``rlcanon`` command. It parses arguments and calls library functions; no algorithm logic."""

from __future__ import annotations

import sys

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
        return run_command(args)
    except RLCanonError as exc:
        return _fail(str(exc))
    except OSError as exc:  # an unwritable path, a read-only or full disk: one line, nothing lost
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        return _fail(f"cannot access{where}: {exc.strerror or exc}")
    except MemoryError:
        return _fail("out of memory; lower the buffer, batch or network sizes")
    except KeyboardInterrupt:
        print("rlcanon: interrupted; the last checkpoint is kept (resume with --resume RUN_DIR)", file=sys.stderr)
        return 130


def _fail(message: str) -> int:
    text = " ".join(message.split())  # one line, always
    print(f"rlcanon: error: {text}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
