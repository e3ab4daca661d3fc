"""Command line: ``python -m xai_core <command> ...`` (also installed as ``xai-video``).

Each command lives in its own module under :mod:`xai_core.commands` exposing
``add_parser(subparsers)`` and ``run(args) -> int``. Expected errors
(:class:`~xai_core.errors.XaiError`) print one line and exit non-zero; ``--debug``
shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback

from .errors import XaiError

#: Command modules, in the order ``--help`` lists them.
COMMANDS = ("predict", "explain", "timeline", "evaluate", "models", "methods")

EXIT_USER_ERROR = 2
EXIT_INTERNAL = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m xai_core",
        description="Explain what a video action-recognition model looks at: motion or scene.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"{__package__}.commands.{name}")
        p = module.add_parser(sub)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show tracebacks of errors")
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False)
    try:
        return int(args._run(args) or 0)
    except XaiError as exc:
        if debug:
            traceback.print_exc()
        print(f"error ({exc.kind}): {exc.user_message()}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # an unexpected failure still gets one readable line
        if debug:
            traceback.print_exc()
        print(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for details)",
              file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
