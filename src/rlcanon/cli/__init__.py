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
        print(f"rlcanon: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "rlcanon: interrupted; the last checkpoint is kept (resume with --resume RUN_DIR)",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
