"""What the verbs share: argument types (a value out of range is argparse's one-line error, exit 2)
and the options several verbs take, defined once (--json, --goarch, the matrix options)."""

from __future__ import annotations

import argparse
import math


def positive_seconds(text: str) -> float:
    """A time budget: a finite number of seconds above 0 (nan, inf and 0 would check nothing)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds above 0, not {text!r}")
    return v


def positive_int(text: str) -> int:
    """A count of at least 1."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {v}")
    return v


def goroot(text: str) -> str:
    """A GOROOT folder, never empty: an empty --goroot would silently mean the default toolchain."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty: pass the folder of a Go toolchain, or leave --goroot out "
                                         "for the default one")
    return text


def seeds(text: str) -> list[int]:
    """Comma-separated campaign seeds, each once, in the order given."""
    try:
        out = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated integers, not {text[:40]!r}") from None
    if not out:
        raise argparse.ArgumentTypeError("names no seed")
    return list(dict.fromkeys(out))


# The options several verbs share, defined once.


def json_option(p, help: str = "machine-readable output") -> None:
    p.add_argument("--json", action="store_true", help=help)


def goarch_option(p, default: str) -> None:
    """--goarch, repeatable; `default` says in words what none means (parse_goarches applies it)."""
    from palloc.goref.targets import GOARCH_HELP

    p.add_argument("--goarch", action="append", metavar="GOARCH", help=f"{GOARCH_HELP} (default {default})")


def matrix_options(p, cell: str) -> None:
    """The seed and Dask options of a verb whose cells run on goref/matrix.py; `cell` names a cell's axes."""
    p.add_argument("--seed", type=int, default=0, help="campaign seed, the same in every cell (default 0)")
    p.add_argument("--seeds", metavar="S,S,...", type=seeds, help=f"several seeds: a cell per {cell} and seed "
                   "(instead of --seed)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="run the cells on this Dask cluster (default: a local cluster, one worker per core)")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="workers of the local Dask cluster (default: one per core)")
