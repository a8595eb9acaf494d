"""Argument types shared by the verbs: a value out of range is argparse's one-line error, exit 2."""

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
