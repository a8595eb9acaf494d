"""The `palloc` command: one tool, one verb per job.

Every verb is a module of this package that defines register(subparsers); register adds the
verb's parser and sets `run`, a function of the parsed arguments returning an exit code:
0 when what was checked holds, 1 when a violation or divergence was found, 2 on a usage or
environment error (always a one-line message on stderr saying what to do).
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from palloc.spec.errors import PallocError

EXIT_HOLDS, EXIT_VIOLATION, EXIT_ERROR = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own usage errors also exit 2
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"palloc: error: {message}\n")


def verb_modules() -> list[str]:
    """Names of the verb modules, sorted so --help is stable."""
    import palloc.cli as pkg

    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_") and m.name != "main")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="palloc",
        description="A formal model and differential tester of the Go runtime's page allocator.",
    )
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    for name in verb_modules():
        importlib.import_module(f"palloc.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return EXIT_ERROR
    try:
        return int(args.run(args))
    except PallocError as e:
        print(f"palloc {args.verb}: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"palloc {args.verb}: interrupted; results found so far were kept", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        # The reader (head, less) went away. Point stdout at devnull so that flushing it at exit
        # cannot raise again, and say so once.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print(f"palloc {args.verb}: the output was closed early (broken pipe); what was printed stands", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
