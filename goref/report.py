"""Writes a shrunk divergence to a failures folder in four forms a person and a machine can use.

For a case named <id> (a hash of its content) the folder gets:

- <id>.json: the replayable case (platform, Go version, initial heap, operations, the divergence),
  which `palloc replay <id>.json` re-runs on both sides;
- test_<id>.py: a pytest regression test that replays it and asserts the two sides agree;
- <id>_test.go: a Go test function in the style of src/runtime/mpagealloc_test.go that runs the
  same operations on the real runtime through its exports (NewPageAlloc, Alloc, Free, AllocToCache,
  ..., plus palloc's overlay for grow, find, allocRange and non-forced scavenge) and checks every
  returned value and the final bitmaps and searchAddr against the model's expected values;
- <id>.txt: the human report, naming the operation and the differing state.

Mirrors no Go file; the Go test it writes targets Go 1.27's runtime test exports.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from palloc.goref import ops as O
from palloc.goref.files import write_atomic
from palloc.goref.fuzz import Case

# The helper's extra exports a Go test needs (goref/overlay/export_palloc_test.go).
OVERLAY_NOTE = "needs palloc's overlay goref/overlay/export_palloc_test.go (go test -overlay)"


def case_id(case: Case) -> str:
    """Returns a short stable name for a case: its platform and a hash of its content."""
    body = json.dumps({k: v for k, v in case.to_json().items() if k != "divergence"}, sort_keys=True)
    return f"{case.goarch}_{hashlib.sha256(body.encode()).hexdigest()[:10]}"


def write_failure(case: Case, folder: str | Path, model_outcomes=None) -> dict[str, Path]:
    """Writes the four files for a divergent case; returns their paths by kind.

    model_outcomes: the model's Outcome list for the case (start first), for the Go test's
    expected values; computed here when not given.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cid = case_id(case)
    paths = {
        "json": folder / f"{cid}.json",
        "pytest": folder / f"test_{cid}.py",
        "go": folder / f"{cid}_test.go",
        "report": folder / f"{cid}.txt",
    }
    if model_outcomes is None:
        model_outcomes = model_run(case)
    # The replayable case first: whatever else fails to print, it is there, and whole.
    write_atomic(paths["json"], json.dumps(case.to_json(), indent=1) + "\n")
    write_atomic(paths["pytest"], pytest_source(case, cid))
    write_atomic(paths["go"], go_test_source(case, cid, model_outcomes))
    write_atomic(paths["report"], human_report(case, cid, paths))
    return paths


def model_run(case: Case):
    """Returns the model's outcomes for a case (the Go test's expected values)."""
    from palloc.goref.broken_models import variant
    from palloc.goref.fuzz import GOARCH_PLATFORM
    from palloc.goref.model_side import ModelSide
    from palloc.spec import platform

    p = platform(GOARCH_PLATFORM[case.goarch])
    fac = variant(case.model_variant).factory() if case.model_variant else None
    return ModelSide(p, fac, case.host or {}).run(case.init, case.ops)


def ops_as_code(ops: list[O.Op], indent: str = "    ") -> str:
    """Returns the operations as Python code that recreates them, one a line."""
    return "\n".join(f"{indent}O.{op!r}," for op in ops)


def human_report(case: Case, cid: str, paths: dict[str, Path] | None = None) -> str:
    """Returns the human report: what diverged, at which operation, and how to replay it."""
    d = case.divergence
    lines = [
        f"palloc fuzz: {d.kind if d else 'no'} divergence on {case.goarch}, Go {case.go_version}"
        + (f", model variant {case.model_variant!r}" if case.model_variant else ""),
        "",
    ]
    if d is not None:
        lines.append(d.text())
        lines.append("")
    lines.append("initial heap: " + ("empty (NewPallocEmptyPageAlloc)" if case.init is None else f"NewPageAlloc({_init_code(case.init)})"))
    lines.append("operations (as code, goref/ops.py):")
    lines.append(ops_as_code(case.ops, "  "))
    lines.append("")
    if paths:
        lines.append(f"replay:     palloc replay {paths['json']}")
        lines.append(f"regression: pytest {paths['pytest']}")
        lines.append(f"Go test:    {paths['go'].name} ({OVERLAY_NOTE})")
    return "\n".join(lines) + "\n"


def _init_code(init: dict) -> str:
    ch = {hex(k): v for k, v in init["chunks"].items()}
    sc = {hex(k): v for k, v in (init.get("scav") or {}).items()}
    return f"chunks={ch}, scav={sc}".replace("'", "")


def pytest_source(case: Case, cid: str) -> str:
    """Returns a pytest module replaying the case and asserting that both sides agree."""
    d = case.divergence
    first = d.headline() if d else "no divergence"
    return f'''"""Regression test written by palloc fuzz: {first.replace('"', "'")}

Replays {cid}.json (next to this file) on the model and the real runtime and asserts that the two
agree at every step, results and state.
"""

from pathlib import Path

import pytest

from palloc.goref import ops as O  # noqa: F401  (the operations, as code, below)
from palloc.goref.report import replay_file
from palloc.spec.errors import PallocError

OPS = [
{ops_as_code(case.ops)}
]


def test_{cid}_model_and_runtime_agree():
    try:
        d = replay_file(Path(__file__).with_name("{cid}.json"))
    except PallocError as e:  # no Go toolchain or helper here
        pytest.skip(str(e))
    assert d is None, d.text()
'''


def _go_u(x: int) -> str:
    return f"{x:#x}" if x > 9 else str(x)


def _go_checked_call(body: list[str], k: int, names: list[str], call: str, label: str, want) -> None:
    """Appends a Go block that assigns `call` to `names` and, given the model's results, checks each."""
    body.append("\t{")
    body.append(f"\t\t{', '.join(names)} := {call}")
    if want:
        cond = " || ".join(f"{n} != {_go_u(w)}" for n, w in zip(names, want))
        got, exp = ", ".join("%#x" for _ in names), ", ".join(f"{w:#x}" for w in want[: len(names)])
        if len(names) > 1:
            got, exp = f"({got})", f"({exp})"
        body.append(f"\t\tif {cond} {{")
        body.append(f'\t\t\tt.Errorf("step {k}: {label} = {got}, want {exp}", {", ".join(names)})')
        body.append("\t\t}")
    body.append("\t}")


def go_test_source(case: Case, cid: str, outs) -> str:
    """Returns a Go test (package runtime_test) reproducing the case with the model's expected values."""
    from palloc.goref.fuzz import GOARCH_PLATFORM
    from palloc.spec import platform

    p = platform(GOARCH_PLATFORM[case.goarch])
    name = "TestPallocFuzz" + "".join(w.capitalize() for w in cid.replace("-", "_").split("_"))
    d = case.divergence
    body: list[str] = []
    if case.init is None:
        body.append("\tb := NewPallocEmptyPageAlloc()")
    else:
        body.append("\tb := NewPageAlloc(map[ChunkIdx][]BitRange{")
        for ci, rs in sorted(case.init["chunks"].items()):
            body.append(f"\t\t{ci:#x}: {{{', '.join(f'{{{i}, {n}}}' for i, n in rs)}}},")
        body.append("\t}, map[ChunkIdx][]BitRange{")
        for ci, rs in sorted((case.init.get("scav") or {}).items()):
            body.append(f"\t\t{ci:#x}: {{{', '.join(f'{{{i}, {n}}}' for i, n in rs)}}},")
        body.append("\t})")
    body.append("\tdefer FreePageAlloc(b)")
    body.append("\tcaches := map[int]*PageCache{}")
    body.append("\t_ = caches")
    for k, op in enumerate(case.ops):
        out = outs[k + 1] if k + 1 < len(outs) else None
        want = out.result if out is not None else None
        crash = out.crash if out is not None else None
        mark = "  // <- the divergence" if d is not None and d.step == k else ""
        body.append(f"\t// step {k}: {op!r}{mark}")
        if crash:
            body.append(f"\t// the model expects this operation to {crash[0]}: {crash[1]}")
        kind = op.kind
        if kind == "grow":
            body.append(f"\tb.PallocGrow({_go_u(op.base)}, {_go_u(op.size)})")
        elif kind == "alloc":
            _go_checked_call(body, k, ["addr", "scav"], f"b.Alloc({op.npages})", f"Alloc({op.npages})", want)
        elif kind == "free":
            body.append(f"\tb.Free({_go_u(op.base)}, {op.npages})")
        elif kind == "find":
            _go_checked_call(body, k, ["addr", "hint"], f"b.PallocFind({op.npages})", f"find({op.npages})", want)
        elif kind == "alloc_range":
            _go_checked_call(body, k, ["scav"], f"b.PallocAllocRange({_go_u(op.base)}, {op.npages})", "allocRange", want)
        elif kind == "scavenge":
            _go_checked_call(body, k, ["r"], f"b.PallocScavenge({_go_u(op.nbytes)}, {str(op.force).lower()})", "scavenge", want)
        elif kind == "next_gen":
            body.append("\tb.PallocNextGen()")
        elif kind == "alloc_to_cache":
            body.append("\t{")
            body.append("\t\tc := b.AllocToCache()")
            body.append(f"\t\tcaches[{op.slot}] = &c")
            if want:
                body.append(f"\t\tif c.Base() != {_go_u(want[0])} || c.Cache() != {_go_u(want[1])} || c.Scav() != {_go_u(want[2])} {{")
                body.append(
                    f'\t\t\tt.Errorf("step {k}: AllocToCache() = (%#x, %#x, %#x), want ({want[0]:#x}, {want[1]:#x}, {want[2]:#x})", c.Base(), c.Cache(), c.Scav())'
                )
                body.append("\t\t}")
            body.append("\t}")
        elif kind == "cache_alloc":
            _go_checked_call(body, k, ["addr", "scav"], f"caches[{op.slot}].Alloc({op.npages})", f"cache Alloc({op.npages})", want)
        elif kind == "cache_flush":
            body.append(f"\tcaches[{op.slot}].Flush(b)")
        else:
            body.append(f"\t// {kind}: a pure function; see {cid}.json")
        if crash:
            break
    final = next((o.state for o in reversed(outs) if o.state is not None), None)
    if final is not None:
        body.append("\t// The state the model expects at the end.")
        body.append(f"\tif got := b.PallocSearchAddr(); got != {_go_u(final.search_addr)} {{")
        body.append(f'\t\tt.Errorf("searchAddr = %#x, want {final.search_addr:#x}", got)')
        body.append("\t}")
        for ci, v in sorted(final.chunks.items()):
            if v is None:
                continue
            words = [(v[0] >> (64 * w)) & (2**64 - 1) for w in range(p.palloc_chunk_pages // 64)]
            swords = [(v[1] >> (64 * w)) & (2**64 - 1) for w in range(p.palloc_chunk_pages // 64)]
            body.append("\t{")
            body.append(f"\t\td := b.PallocData({ci:#x})")
            body.append(f"\t\twantAlloc := PallocBits{{{', '.join(f'{x:#x}' for x in words)}}}")
            body.append(f"\t\twantScav := PallocBits{{{', '.join(f'{x:#x}' for x in swords)}}}")
            body.append("\t\tif *d.PallocBits() != wantAlloc {")
            body.append(f'\t\t\tt.Errorf("chunk {ci:#x} alloc bits differ: %v", DiffPallocBits(d.PallocBits(), &wantAlloc))')
            body.append("\t\t}")
            body.append("\t\tif *d.Scavenged() != wantScav {")
            body.append(f'\t\t\tt.Errorf("chunk {ci:#x} scavenged bits differ: %v", DiffPallocBits(d.Scavenged(), &wantScav))')
            body.append("\t\t}")
            body.append("\t}")
    headline = d.headline() if d else "no divergence"
    return (
        "// Code written by palloc fuzz. " + OVERLAY_NOTE + ".\n"
        f"// {headline}\n"
        f"// Platform {p.name}, Go {case.go_version}; expected values are the palloc model's.\n\n"
        "package runtime_test\n\n"
        "import (\n\t. \"runtime\"\n\t\"testing\"\n)\n\n"
        f"func {name}(t *testing.T) {{\n" + "\n".join(body) + "\n}\n"
    )


# --- replay ---------------------------------------------------------------------------------


def load_case(path: str | Path) -> Case:
    """Reads a failure file; raises PallocError (one line) if it is missing or malformed."""
    from palloc.spec.errors import PallocError

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise PallocError(f"cannot read {path}: {e.strerror}; pass a .json file written by `palloc fuzz`") from None
    try:
        case = Case.from_json(json.loads(text))
    except (ValueError, KeyError, TypeError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise PallocError(f"{path} is not a palloc fuzz case: {msg}") from None
    from palloc.goref.fuzz import GOARCH_PLATFORM
    from palloc.spec import platform

    p = platform(GOARCH_PLATFORM[case.goarch])
    for i, op in enumerate(case.ops):
        why = O.undefined_reason(op, p)
        if why:
            raise PallocError(f"{path}: operation {i} ({op!r}) is undefined in the runtime: {why}")
    return case


def replay_case(case: Case, goroot: str | None = None):
    """Re-runs a case on the model (its variant, if any) and the real runtime; returns the
    first divergence, or None when they agree."""
    from palloc.goref.fuzz import session

    runner = session(case.goarch, goroot=goroot, variant=case.model_variant, go_version=case.go_version)
    return runner.run_case(case)


def replay_file(path: str | Path, goroot: str | None = None):
    """Loads and replays a failure file; returns the first divergence, or None."""
    return replay_case(load_case(path), goroot)
