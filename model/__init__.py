"""palloc.model: the executable reference model of the Go runtime's page allocator (Go 1.27).

The modules on the hot path of every operation (COMPILED) are compiled by Cython when palloc is
installed (setup.py), from the very .py files beside them, which stay the source that is read,
tested and proved. An editable install, a machine without a C compiler, or PALLOC_INTERPRETED=1
in the environment when palloc.model is first imported leaves every module interpreted from its
.py: CrossHair needs bytecode to follow (palloc contracts sets it), and a side-by-side bench
wants the interpreted figure.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys

# Read by setup.py (ast.literal_eval): the modules compiled at install.
COMPILED = ("gomath", "mgcscavenge", "mgcscavenge_fast", "mpagealloc", "mpagealloc_fast", "mpagecache", "mpallocbits",
            "mpallocbits_fast", "mranges", "workload")

INTERPRETED_ENV = "PALLOC_INTERPRETED"


class _FromSource(importlib.abc.MetaPathFinder):
    """Finds palloc.model.<m> as its .py even where a compiled module lies beside it."""

    def find_spec(self, name, path=None, target=None):
        pkg, _, leaf = name.rpartition(".")
        if pkg != __name__:
            return None
        for d in __path__:
            src = os.path.join(d, leaf + ".py")
            if os.path.isfile(src):
                return importlib.util.spec_from_file_location(name, src)
        return None


if os.environ.get(INTERPRETED_ENV, "") not in ("", "0"):
    sys.meta_path.insert(0, _FromSource())


def compiled_modules() -> list[str]:
    """Returns the names of COMPILED that this process runs compiled (imports them)."""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    return [m for m in COMPILED if (importlib.import_module(f"{__name__}.{m}").__file__ or "").endswith(suffixes)]


def build() -> str:
    """Says how this process runs the model: 'compiled (Cython): <modules>' or 'interpreted'."""
    mods = compiled_modules()
    if not mods:
        return "interpreted"
    return f"compiled (Cython): {', '.join(mods)}" + ("" if len(mods) == len(COMPILED) else " (the rest interpreted)")
