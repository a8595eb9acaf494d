"""Which extra of palloc's pyproject.toml installs which module: a verb whose extra is missing says
so in one line (exit 2) instead of a traceback. The model and the spec need none of them."""

from __future__ import annotations

EXTRA_OF = {
    "z3": "prove",
    "crosshair": "contracts",
    "hypothesis": "fuzz",
    "tqdm": "fuzz",
    "distributed": "matrix",
    "dask": "matrix",
}


def missing_extra(e: ModuleNotFoundError) -> str | None:
    """Returns the one line for a module an extra installs, or None for any other missing module."""
    module = (e.name or "").split(".")[0]
    extra = EXTRA_OF.get(module)
    if extra is None:
        return None
    return f"needs {module}, from palloc's [{extra}] extra: pip install 'palloc[{extra}]'"
