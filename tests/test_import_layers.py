"""The folders are layers: spec -> model -> (proofs | goref) -> cli, and no module imports upward.

spec/ (the constants, the named invariants, the abstract allocator) imports nothing of palloc's
but spec; model/ (the runtime's mirror) only spec; proofs/ and goref/ are peers above the model
(translation validation runs the Go translator of goref/, the versions matrix the runtime proofs
of proofs/); cli/ is the top and nothing imports it. Every import statement of every module is
read with ast, and so are import_module/__import__ calls with a literal name, including imports
inside functions; a seeded upward import must be caught (the broken variant below).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RANK = {"spec": 0, "model": 1, "proofs": 2, "goref": 2, "cli": 3}


def _imported(tree: ast.AST, package: str) -> list[tuple[int, str]]:
    """Returns (line, dotted name) of every palloc module a module of `package` imports."""
    out = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            out += [(n.lineno, a.name) for a in n.names]
        elif isinstance(n, ast.ImportFrom):
            if n.level:  # relative: from the module's own package, up level-1 packages
                base = package.split(".")[: len(package.split(".")) - (n.level - 1)]
                mod = ".".join(base + ([n.module] if n.module else []))
            else:
                mod = n.module or ""
            out.append((n.lineno, mod))
            if mod == "palloc":  # from palloc import cli
                out += [(n.lineno, f"palloc.{a.name}") for a in n.names]
        elif (isinstance(n, ast.Call) and n.args and isinstance(n.args[0], ast.Constant)
              and isinstance(n.args[0].value, str)
              and (getattr(n.func, "attr", None) == "import_module" or getattr(n.func, "id", None) in
                   ("import_module", "__import__"))):
            out.append((n.lineno, n.args[0].value))
    return [(line, m) for line, m in out if m.startswith("palloc.")]


def upward_imports(root: Path) -> list[str]:
    """Returns `file:line: folder imports palloc.X (layer above)` for every upward import below root."""
    bad = []
    for folder, rank in RANK.items():
        for f in sorted((root / folder).rglob("*.py")):
            rel = f.relative_to(root / folder).with_suffix("").parts
            package = ".".join(["palloc", folder, *rel[:-1]])
            for line, mod in _imported(ast.parse(f.read_text(), str(f)), package):
                target = mod.split(".")[1]
                if target in RANK and RANK[target] > rank:
                    bad.append(f"{f.relative_to(root)}:{line}: {folder} imports {mod} ({target} is a layer above)")
    return bad


def test_no_module_imports_a_layer_above_it():
    assert upward_imports(ROOT) == []


def test_every_package_folder_has_a_layer():
    """A new top-level package must be placed in RANK, or its imports go unchecked."""
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert packages == set(RANK), packages ^ set(RANK)


def test_seeded_upward_imports_are_caught(tmp_path):
    """The broken variant of the layering: each kind of upward import, seeded in a copy, is reported."""
    for folder in RANK:
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "__init__.py").write_text("")
    (tmp_path / "model" / "a.py").write_text("from palloc.cli.main import main\n")
    (tmp_path / "spec" / "b.py").write_text("def f():\n    import palloc.model.mpagealloc\n")
    (tmp_path / "goref" / "sub").mkdir()
    (tmp_path / "goref" / "sub" / "c.py").write_text("from ...cli import fuzz\n")
    (tmp_path / "proofs" / "d.py").write_text("import importlib\nimportlib.import_module('palloc.cli.prove')\n")
    (tmp_path / "spec" / "e.py").write_text("from palloc import goref\n")
    (tmp_path / "cli" / "ok.py").write_text("from palloc.goref import fuzz\nfrom . import main\n")
    (tmp_path / "goref" / "ok.py").write_text("from palloc.proofs import tv\nfrom .sub import c\n")
    bad = upward_imports(tmp_path)
    assert [b.split(":")[0] for b in bad] == ["spec/b.py", "spec/e.py", "model/a.py", "proofs/d.py",
                                              "goref/sub/c.py"], bad
