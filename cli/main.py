"""The `palloc` command: one tool, one verb per job.

Every verb is a module of this package (cli/verify_change.py is `palloc verify-change`) that
defines HELP (one line for `palloc --help`), DESCRIPTION (for the verb's own --help),
arguments(p) (adds the verb's options to its parser) and run(args), a function of the parsed
arguments returning an exit code: 0 when what was checked holds, 1 when a violation or divergence
was found, 2 on a usage or environment error (always a one-line message on stderr saying what to
do). build_parser makes every verb's parser the same way, here and nowhere else.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import signal
import sys
import tempfile
import time
import traceback

from palloc.spec.errors import PallocError

EXIT_HOLDS, EXIT_VIOLATION, EXIT_ERROR = 0, 1, 2
EXIT_CODES = ("Exit codes, for every verb: 0 what was checked holds; 1 a counterexample or divergence was found; "
              "2 a usage or environment error, said in one line on stderr (an unexpected one also saves its "
              "traceback in palloc's log folder and says where); and for verify-change 3: the patch changes "
              "behaviour but keeps every obligation of the allocator's contract (a valid policy change).")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own usage errors also exit 2, in one line
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def verb_modules() -> list[str]:
    """Names of the verb modules, sorted so --help is stable."""
    import palloc.cli as pkg

    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_") and m.name != "main")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="palloc",
        description="A formal model and differential tester of the Go runtime's page allocator.",
        epilog=EXIT_CODES,
    )
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    for name in verb_modules():
        verb = importlib.import_module(f"palloc.cli.{name}")
        p = sub.add_parser(name.replace("_", "-"), help=verb.HELP, description=verb.DESCRIPTION)
        p.set_defaults(run=getattr(verb, "run", None))  # a verb of actions (goref) sets each action's own
        verb.arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    verb = None
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as e:  # --help (0) or an argument error (2, already said): a code, as from a verb
            return e.code if isinstance(e.code, int) else EXIT_ERROR
        verb = args.verb
        if not getattr(args, "run", None):
            parser.print_help()
            return EXIT_ERROR
        from palloc.goref.procs import sweep_stale

        sweep_stale()  # what a palloc killed earlier (SIGKILL) could not remove
        return int(args.run(args))
    except PallocError as e:
        print(f"palloc {verb}: {e}", file=sys.stderr)
        return EXIT_ERROR
    except ModuleNotFoundError as e:  # an extra not installed is a usage error, said in one line
        from palloc.cli._extras import missing_extra

        line = missing_extra(e)
        if line is None:
            return _internal_error(verb, argv, e)
        print(f"palloc {verb}: {line}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        # What is left is printing and the interpreter's exit: a second Ctrl-C there must not
        # print a traceback either.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print(f"palloc {verb}: interrupted; results found so far were kept", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        # The reader (head, less) went away. Point stdout at devnull so that flushing it at exit
        # cannot raise again, and say so once.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print(f"palloc {verb}: the output was closed early (broken pipe); what was printed stands", file=sys.stderr)
        return EXIT_ERROR
    except Exception as e:  # noqa: BLE001 - the guard: a bug is exit 2 and one line, never exit 1
        return _internal_error(verb, argv, e)


def _internal_error(verb: str | None, argv: list[str] | None, e: Exception) -> int:
    """Saves the traceback of an unexpected exception and says where in one line; returns 2.

    Exit 1 means a counterexample, so a bug in palloc must not end with Python's exit 1.
    """
    what = f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]}".rstrip(": ")
    report = (
        f"palloc {verb or ''} failed with an unexpected exception (a palloc bug)\n"
        f"command: {' '.join(['palloc', *(sys.argv[1:] if argv is None else argv)])}\n"
        f"cwd: {os.getcwd()}\npython: {sys.version.split()[0]} on {sys.platform}\n"
        f"time: {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n\n" + "".join(traceback.format_exception(e))
    )
    saved = _save_report(report)
    if saved is None:
        print(report, file=sys.stderr, end="")
        print(f"palloc {verb}: internal error ({what}); this is a palloc bug: please report it with the "
              "traceback above", file=sys.stderr)
    else:
        print(f"palloc {verb}: internal error ({what}); this is a palloc bug: please report it with the "
              f"traceback saved in {saved}", file=sys.stderr)
    return EXIT_ERROR


def _save_report(text: str) -> str | None:
    """Writes text to a new file in palloc's log folder, else the temporary folder; returns its
    path, or None when neither can be written."""
    import platformdirs

    from palloc.goref.files import write_atomic

    name = f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
    for folder in (platformdirs.user_log_dir("palloc"), tempfile.gettempdir()):
        try:
            os.makedirs(folder, exist_ok=True)
            return str(write_atomic(os.path.join(folder, name), text))
        except OSError:
            continue
    return None


if __name__ == "__main__":
    sys.exit(main())
