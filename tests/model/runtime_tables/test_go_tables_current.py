"""go_tables.py is what gen_go_tables.py transcribes from the installed toolchain's runtime tests.

A drift check: if the runtime's tables change (a new Go version), this fails until the tables
are regenerated, so the ported tables never silently fall behind the source they mirror.
"""

from __future__ import annotations

import pathlib

import pytest


@pytest.mark.go
def test_go_tables_match_the_installed_runtime_tests():
    gen = pytest.importorskip("gen_go_tables")
    try:
        goroot = gen.default_goroot()
    except ImportError:
        pytest.skip("no Go toolchain with runtime source: pip install 'palloc[go]'")
    if not (goroot / "src" / "runtime" / "mpagealloc_test.go").exists():
        pytest.skip(f"{goroot} has no runtime test sources: pip install 'palloc[go]'")
    want = pathlib.Path(gen.__file__).with_name("go_tables.py").read_text()
    version = (goroot / "VERSION").read_text().split()[0] if (goroot / "VERSION").exists() else "?"
    if version not in want.split("\n", 1)[0]:
        pytest.skip(f"go_tables.py was generated from another Go version than {version}")
    assert gen.render(goroot) == want, "regenerate: python tests/model/runtime_tables/gen_go_tables.py"


def test_generator_translates_go_statements():
    """The generator's Go subset: literals, if/else, for loops, :=, append, func literals."""
    import gen_go_tables as gen

    src = (
        'tests := map[string]test{\n\t"A": {n: 1, hits: []hit{{1, PageBase(BaseChunkIdx, 0)}}},\n}\n'
        "if PallocChunkPages >= 512 {\n\ttests[\"B\"] = test{n: ^uint(0) &^ 1}\n} else {\n\tx := 3\n}\n"
        "for i := 0; i < 2; i++ {\n\tl = append(l, i)\n}\n"
    )
    lines = gen.translate_function("T", src)
    text = "\n".join(lines)
    assert "tests = {\"A\": {'n': 1, 'hits': [(1, PageBase(BaseChunkIdx, 0))]}}" in text
    assert "tests[\"B\"] = {'n': BNOT_uint(0) & ~1}" in text
    assert "else:" in text and "x = 3" in text
    assert "while i < 2:" in text and "i += 1" in text
    env = {
        "PageBase": lambda c, i: c * 100 + i,
        "BaseChunkIdx": 7,
        "PallocChunkPages": 512,
        "BNOT_uint": lambda x: ~x & 0xFFFF,
        "append": lambda s, *xs: list(s) + list(xs),
        "l": [],
    }
    ns: dict = {}
    exec(text, ns)
    assert ns["T"](env) == {"A": {"n": 1, "hits": [(1, 700)]}, "B": {"n": 0xFFFE}}
