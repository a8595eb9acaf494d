"""Compiles the model's hot modules with Cython at install; everything else is in pyproject.toml.

Cython earns its place by speed alone: the compiled module is the same .py source (palloc.model
ships both, and PALLOC_INTERPRETED=1 runs the .py), 20% fewer instructions per model operation
(the C integers of model/mpagealloc_fast.pxd are 5 of them).
The compiled modules are optional extensions: without a C compiler the install goes on and the
model runs interpreted (`palloc bench` says which). An editable install compiles nothing, so an
edited .py is never shadowed by a stale compiled module beside it.
"""

import ast
import os
import shutil
import sys

from setuptools import setup


def _compiled_names() -> tuple[str, ...]:
    # COMPILED of model/__init__.py, read without importing palloc (not installed yet).
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "model", "__init__.py")) as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "COMPILED" for t in node.targets):
            return ast.literal_eval(node.value)
    raise SystemExit("setup.py: model/__init__.py defines no COMPILED")


def _ext_modules() -> list:
    if "editable_wheel" in sys.argv or "develop" in sys.argv:
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("setup.py: Cython is not installed; the model will run interpreted", file=sys.stderr)
        return []
    from setuptools import Extension

    names = _compiled_names()
    # Cython finds the augmenting .pxd of palloc.model.<m> as palloc/model/<m>.pxd on its
    # include path, not beside model/<m>.py (the folder is mapped to the package): stage them.
    stage = os.path.join("build", "pxd")
    shutil.rmtree(stage, ignore_errors=True)  # a .pxd staged by an older tree would shadow a renamed module
    os.makedirs(os.path.join(stage, "palloc", "model"), exist_ok=True)
    for m in names:
        if os.path.exists(f"model/{m}.pxd"):
            shutil.copy2(f"model/{m}.pxd", os.path.join(stage, "palloc", "model", f"{m}.pxd"))
    exts = [Extension(f"palloc.model.{m}", [f"model/{m}.py"]) for m in names]
    exts = cythonize(
        exts,
        include_path=[stage],
        build_dir="build/cython",  # the generated C stays out of the source tree
        # Annotations stay documentation, as in the interpreted model (Cython would otherwise
        # enforce them); C types come only from the augmenting .pxd beside a module.
        compiler_directives={"language_level": 3, "annotation_typing": False},
        nthreads=os.cpu_count() or 1,
        quiet=True,
    )
    for ext in exts:
        ext.optional = True  # a failed C compile leaves the module interpreted (cythonize drops the flag)
    return exts


exts = _ext_modules()
setup(ext_modules=exts, options={"build_ext": {"parallel": os.cpu_count() or 1}} if exts else {})
