"""The proof suite keeps Alive2's layering: only the smt layer imports z3, theorems name their variants."""

from __future__ import annotations

import ast
from pathlib import Path

from palloc.proofs import runner

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_smt_layer_imports_z3():
    offenders = [p.name for p in list((ROOT / "proofs").glob("*.py")) + list((ROOT / "cli").glob("*.py"))
                 if "z3" in _imports(p) and not p.name.startswith("smt")]
    assert offenders == []


def test_every_variant_names_an_existing_obligation_of_its_theorem():
    names = {ob.qualname for ob in runner.obligations()}
    for ob in runner.obligations():
        if ob.is_variant:
            assert f"{ob.theorem}.{ob.variant_of}" in names, ob.qualname
            assert ob.name.startswith("broken_")


def test_every_theorem_module_states_its_claim_and_bounds_in_its_docstring():
    import importlib

    for m in runner.THEOREM_MODULES:
        doc = importlib.import_module(f"palloc.proofs.{m}").__doc__
        assert doc and "Theorem" in doc and ("Why it holds" in doc or "induction" in doc)
