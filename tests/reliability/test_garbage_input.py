"""Generated garbage for every verb that reads a file: random bytes, JSON and TOML of the
right and the wrong shape, truncated and corrupted real case files and diffs. Each is exit 2 with
one line on stderr, never a traceback and never the guard's "internal error" (which would mean
palloc met the input unprepared).

Inputs that happen to be valid must stop at a later one-line error, before anything expensive:
replay and verify-change are pointed at a folder with no Go toolchain, prove at an obligation
that does not exist.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from palloc.goref import ops as O
from palloc.goref.fuzz import Case
from palloc.spec import platform

NO_GO = "/nonexistent-goroot"
P = platform("linux/amd64")
BASE = (P.base_chunk_idx * P.palloc_chunk_bytes + P.arena_base_offset) & P.uintptr_mask
REAL_CASE = json.dumps(Case("amd64", "1.27.3", {"chunks": {P.base_chunk_idx: [[0, 3]]}, "scav": {}}, [
    O.Grow(BASE + 4 * P.palloc_chunk_bytes, P.palloc_chunk_bytes), O.Alloc(3), O.Free(BASE, 2), O.Find(7),
    O.Scavenge(1 << 20, True), O.AllocToCache(0), O.CacheAlloc(0, 2), O.BitsSummarize(5),
]).to_json(), indent=1)
MUTANTS = Path(__file__).resolve().parents[2] / "goref" / "mutants"
REAL_PATCH = (MUTANTS / "01-b1-find1-addr-plus-one.patch").read_text()

EXAMPLES = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# Values of every JSON type, with the integers that matter at the edges of Go's types.
EDGE_INTS = st.sampled_from([0, 1, -1, 3, 64, 512, 513, 1 << 31, 1 << 32, 1 << 63, (1 << 64) - 1, 1 << 64, 1 << 70,
                             P.palloc_chunk_bytes, BASE, P.base_chunk_idx])
SCALARS = st.one_of(st.none(), st.booleans(), EDGE_INTS, st.integers(), st.floats(allow_nan=False),
                    st.text(max_size=12), st.sampled_from(["0x200c000", "amd64", "386", "1.27.3", "go1.27", "1.99", ""]))
JSON = st.recursive(SCALARS, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
                    max_leaves=12)


@st.composite
def ops_json(draw):
    """An operation object: a known verb with fields of any type (mostly integers at the edges)."""
    kind = draw(st.sampled_from(sorted(O.OP_TYPES)))
    import dataclasses

    d = {"op": kind}
    for f in dataclasses.fields(O.OP_TYPES[kind]):
        if draw(st.integers(0, 20)) == 0:
            continue  # a missing field
        d[f.name] = draw(st.booleans() if f.type in ("bool", bool) else EDGE_INTS | SCALARS)
    return d


@st.composite
def case_shaped(draw):
    """A JSON object shaped like a case: a real one with a few fields or operations made wrong."""
    d = json.loads(REAL_CASE)
    for key in ("goarch", "go_version", "model_variant", "host", "init", "divergence"):
        if draw(st.integers(0, 5)) == 0:
            d[key] = draw(JSON)
    if draw(st.integers(0, 3)) == 0:
        d["init"] = {"chunks": draw(st.dictionaries(st.sampled_from(["0x200c000", "0", "x", hex(1 << 40)]),
                                                    st.lists(st.lists(EDGE_INTS, max_size=3), max_size=3) | JSON,
                                                    max_size=2))}
    ops = d["ops"]
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(ops)))
        how = draw(st.sampled_from(["insert", "field", "drop"]))
        if how == "insert" or i == len(ops):
            ops.insert(i, draw(ops_json()))
        elif how == "field":
            field = draw(st.sampled_from(sorted(ops[i])))
            ops[i][field] = draw(EDGE_INTS | SCALARS)
        else:
            del ops[i]
    if draw(st.integers(0, 19)) == 0:
        d["ops"] = draw(JSON)
    if draw(st.integers(0, 19)) == 0:
        del d[draw(st.sampled_from(sorted(d)))]
    return json.dumps(d).encode()


def corrupted(text: str):
    """The text truncated at any point, or with a few of its bytes replaced."""
    raw = text.encode()
    cut = st.integers(0, len(raw)).map(lambda n: raw[:n])
    flips = st.lists(st.tuples(st.integers(0, len(raw) - 1), st.integers(0, 255)), min_size=1, max_size=4).map(
        lambda fs: bytes(b if not any(i == j for j, _ in fs) else next(v for j, v in fs if j == i) for i, b in enumerate(raw)))
    return cut | flips


CASE_FILES = st.one_of(st.binary(max_size=200), JSON.map(lambda v: json.dumps(v).encode()), case_shaped(),
                       corrupted(REAL_CASE))


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v) if v == v and abs(v) != float("inf") else "nan"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + "}"


CONFIG_KEYS = ["base", "go_version", "ptr_size", "heap_addr_bits", "arena_base_offset", "page_alloc_file",
               "phys_page_size", "phys_huge_page_size", "summary_level_bits", "log_palloc_chunk_pages",
               "summary_levels", "palloc_chunks_l1_bits", "name", "heap_bits"]
TOML_SCALARS = st.one_of(st.booleans(), EDGE_INTS.filter(lambda v: -(1 << 63) <= v < (1 << 63)), st.integers(-70, 70),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=10),
                         st.sampled_from(["linux/amd64", "linux/386", "js/wasm", "64bit", "32bit", "1.27", "1.21"]))


@st.composite
def config_shaped(draw):
    """A TOML document shaped like a --config: a base, then keys of Platform with values of any type."""
    lines = [] if draw(st.integers(0, 9)) == 0 else [f"base = {toml_value(draw(TOML_SCALARS | st.just('linux/amd64')))}"]
    for key in draw(st.lists(st.sampled_from(CONFIG_KEYS), max_size=4, unique=True)):
        value = draw(TOML_SCALARS | st.lists(TOML_SCALARS, max_size=2))
        lines.append(f"{key} = {toml_value(value)}")
    return ("\n".join(lines) + "\n").encode()


CONFIG_FILES = st.one_of(st.binary(max_size=120), config_shaped(), corrupted('base = "linux/amd64"\nheap_addr_bits = 57\n'))

DIFF_LINES = st.sampled_from(["--- a/src/runtime/mpagealloc.go", "+++ b/src/runtime/mpagealloc.go", "--- src/x.go",
                              "+++ /dev/null", "@@ -1,2 +1,2 @@", "@@ -1 +1 @@", "@@ junk @@", " context", "-old",
                              "+new", "\\ No newline at end of file", "diff --git a/src/runtime/a.go b/src/runtime/a.go",
                              "rename from src/runtime/a.go", "rename to src/os/a.go", "new file mode 100644", ""])
PATCH_FILES = st.one_of(st.binary(max_size=200), corrupted(REAL_PATCH),
                        st.lists(DIFF_LINES, max_size=12).map(lambda ls: ("\n".join(ls) + "\n").encode()))


def assert_one_line_error(r):
    line = r.error_line()
    assert "internal error" not in line, line
    return line


@EXAMPLES
@given(data=CASE_FILES)
def test_replay_of_garbage_is_one_line(palloc, tmp_path, data):
    f = tmp_path / "case.json"
    f.write_bytes(data)
    assert_one_line_error(palloc("replay", f, "--goroot", NO_GO))


@EXAMPLES
@given(data=CONFIG_FILES)
def test_prove_config_of_garbage_is_one_line(palloc, tmp_path, data):
    f = tmp_path / "c.toml"
    f.write_bytes(data)
    assert_one_line_error(palloc("prove", "--config", f, "--only", "no-such-obligation"))


@EXAMPLES
@given(data=PATCH_FILES)
def test_verify_change_of_garbage_is_one_line_before_any_toolchain(palloc, tmp_path, data):
    f = tmp_path / "p.patch"
    f.write_bytes(data)
    line = assert_one_line_error(palloc("verify-change", f, "--base-goroot", NO_GO))
    assert NO_GO not in line or b"src/runtime/" in data  # only a diff that passed the checks gets as far


@pytest.mark.parametrize("verb, name, data", [
    ("replay", "case.json", b"\x00\xff" * 40),
    ("replay", "case.json", REAL_CASE[: len(REAL_CASE) // 2].encode()),
    ("prove", "c.toml", b'base = "linux/amd64"\nheap_addr_bits = 48.5\n'),
    ("verify-change", "p.patch", REAL_PATCH[: len(REAL_PATCH) // 2].encode()),
])
def test_the_installed_entry_point_refuses_garbage_the_same_way(palloc_process, tmp_path, verb, name, data):
    f = tmp_path / name
    f.write_bytes(data)
    extra = {"replay": ["--goroot", NO_GO], "prove": [], "verify-change": ["--base-goroot", NO_GO]}[verb]
    argv = [verb, "--config", f] if verb == "prove" else [verb, f]
    assert_one_line_error(palloc_process(*argv, *extra))
