"""Writes a shrunk divergence to a failures folder in the forms a person and a machine can use.

For a case named <id> (a hash of its content) the folder gets:

- <id>.json: the replayable case (platform, Go version, initial heap, operations, the divergence),
  which `palloc replay <id>.json` re-runs on both sides;
- test_<id>.py: a pytest regression test that replays it and asserts the two sides agree;
- <id>_test.go: a Go test function in the style of src/runtime/mpagealloc_test.go that runs the
  same operations on the real runtime through its exports (NewPageAlloc, Alloc, Free, AllocToCache,
  ..., plus palloc's overlay for grow, find, allocRange and non-forced scavenge) and checks every
  returned value and the final bitmaps and searchAddr against the model's expected values;
- <id>.txt: the human report, naming the operation and the differing state;
- <id>.html: its picture (goref/picture.py): the chunks' pages on both sides with the differing
  ones marked, the summary tree around the differing entry, and the operations.

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


def write_failure(case: Case, folder: str | Path, model_outcomes=None, runtime_outcomes=None) -> dict[str, Path]:
    """Writes the files for a divergent case; returns their paths by kind.

    model_outcomes: the model's Outcome list for the case (start first), for the Go test's
    expected values; computed here when not given. runtime_outcomes: the runtime's, for the
    picture (<id>.html) to draw both sides; without them it draws the model's and says so.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cid = case_id(case)
    paths = {
        "json": folder / f"{cid}.json",
        "pytest": folder / f"test_{cid}.py",
        "go": folder / f"{cid}_test.go",
        "report": folder / f"{cid}.txt",
        "html": folder / f"{cid}.html",
    }
    if model_outcomes is None:
        model_outcomes = model_run(case)
    # The replayable case first: whatever else fails to print, it is there, and whole.
    write_atomic(paths["json"], json.dumps(case.to_json(), indent=1) + "\n")
    write_atomic(paths["pytest"], pytest_source(case, cid))
    from palloc.goref.gotest_paste import go_test_for

    # Through the stock export_test.go API when the divergence shows there, else with the overlay.
    write_atomic(paths["go"], go_test_for(case, cid, model_outcomes))
    from palloc.goref.picture import case_picture, differing_rows, html_page

    note = None
    if runtime_outcomes is None:
        crashed = case.divergence is not None and case.divergence.kind == "crash"
        note = ("the runtime crashed here (the divergence says how), so only the model's state is drawn" if crashed
                else f"the runtime's state was not recorded with this case; `palloc show {paths['json']}` replays "
                "it on both sides")
    pic = case_picture(case, model_outcomes, runtime_outcomes, note=note)
    rows = differing_rows(pic)  # the report shows the pages that differ as text, the HTML all of it
    write_atomic(paths["report"], human_report(case, cid, paths) + ("\n" + rows if rows else ""))
    write_atomic(paths["html"], html_page(pic))
    return paths


def model_run(case: Case):
    """Returns the model's outcomes for a case (the Go test's expected values)."""
    from palloc.goref.broken import model_variant
    from palloc.goref.fuzz import goarch_platform
    from palloc.goref.model_side import ModelSide

    p = goarch_platform(case.goarch)
    fac = model_variant(case.model_variant).factory() if case.model_variant else None
    return ModelSide(p, fac, case.host or {}).run(case.init, case.ops)


def _go_test_note(path: Path) -> str:
    """Says whether a written Go test pastes into the runtime's tests or needs the overlay."""
    try:
        first = Path(path).read_text().split("\n", 1)[0]
    except OSError:
        return OVERLAY_NOTE
    return OVERLAY_NOTE if first.startswith("// Needs palloc's overlay") else "export_test.go only: pastes into the runtime's tests"


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
        lines.append(f"Go test:    {paths['go'].name} ({_go_test_note(paths['go'])})")
        if "html" in paths:
            lines.append(f"picture:    {paths['html']} (in a browser; `palloc show {paths['json']}` in the terminal)")
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


def _go_checked_call(body: list[str], k: int, names: list[str], call: str, label: str, want,
                     setup: tuple[str, ...] = (), bools: tuple[str, ...] = ()) -> None:
    """Appends a Go block that runs `setup`, assigns `call` to `names` and, given the model's
    results, checks each (a name in `bools` is a Go bool, which the model gives as 0 or 1)."""
    body.append("\t{")
    body += [f"\t\t{line}" for line in setup]
    body.append(f"\t\t{', '.join(names)} := {call}")
    if want:
        conds, got, exp = [], [], []
        for n, w in zip(names, want):
            if n in bools:
                conds.append(f"{n} != {str(bool(w)).lower()}")
                got.append("%v")
                exp.append(str(bool(w)).lower())
            else:
                conds.append(f"{n} != {_go_u(w)}")
                got.append("%#x")
                exp.append(f"{w:#x}")
        got_s, exp_s = ", ".join(got), ", ".join(exp)
        if len(names) > 1:
            got_s, exp_s = f"({got_s})", f"({exp_s})"
        body.append(f"\t\tif {' || '.join(conds)} {{")
        body.append(f'\t\t\tt.Errorf("step {k}: {label} = {got_s}, want {exp_s}", {", ".join(names)})')
        body.append("\t\t}")
    else:
        body.append(f"\t\t_ = {names[0]}" if len(names) == 1 else f"\t\t_, _ = {', '.join(names)}")
    body.append("\t}")


def _go_bits(p, v: int) -> str:
    """A PallocBits literal of a chunk bitmap (little-endian 64-bit words)."""
    words = [(v >> (64 * w)) & (2**64 - 1) for w in range(p.palloc_chunk_pages // 64)]
    return f"PallocBits{{{', '.join(f'{x:#x}' for x in words)}}}"


def _go_pure(body: list[str], k: int, p, op, want) -> None:
    """Appends the Go block of a bitmap function (mpallocbits.go, mgcscavenge.go), checked."""
    kind = op.kind
    if kind == "bits_find":
        _go_checked_call(body, k, ["i", "si"], f"bits.Find({op.npages}, {op.search_idx})",
                         f"PallocBits.Find({op.npages}, {op.search_idx})", want, setup=(f"bits := {_go_bits(p, op.bits)}",))
    elif kind == "bits_summarize":
        _go_checked_call(body, k, ["sum"], "bits.Summarize()", "PallocBits.Summarize()", want,
                         setup=(f"bits := {_go_bits(p, op.bits)}",))
    elif kind == "find_bit_range64":
        _go_checked_call(body, k, ["i"], f"FindBitRange64({op.c:#x}, {op.n})", f"FindBitRange64({op.c:#x}, {op.n})", want)
    elif kind == "fill_aligned":
        _go_checked_call(body, k, ["x"], f"FillAligned({op.x:#x}, {op.m})", f"FillAligned({op.x:#x}, {op.m})", want)
    elif kind == "find_scavenge_candidate":
        call = f"d.FindScavengeCandidate({op.search_idx}, {_go_u(op.minimum)}, {_go_u(op.max)})"
        _go_checked_call(body, k, ["base", "npages"], call, call.removeprefix("d."), want, setup=(
            "var d PallocData", f"*d.PallocBits() = {_go_bits(p, op.alloc)}", f"*d.Scavenged() = {_go_bits(p, op.scav)}"))
    else:
        raise ValueError(f"no Go form for {kind!r}")


def _go_addr_ranges(body: list[str], k: int, op, want) -> None:
    """Appends the Go block of an addrRanges verb (mranges.go) on the test's set `ar`: the verb,
    its results checked, then the whole set checked against the model's."""
    kind = op.kind
    own: list = []
    if kind == "addr_ranges_new":
        body.append("\tar = NewAddrRanges()")
        return
    if kind == "addr_ranges_add":
        body.append(f"\tar.Add(MakeAddrRange({_go_u(op.base)}, {_go_u(op.limit)}))")
    elif kind == "addr_ranges_find_succ":
        own = list(want[:1]) if want else []
        _go_checked_call(body, k, ["i"], f"ar.FindSucc({_go_u(op.addr)})", f"findSucc({op.addr:#x})", own)
    elif kind == "addr_ranges_find_addr_greater_equal":
        own = list(want[:2]) if want else []
        _go_checked_call(body, k, ["addr", "ok"], f"ar.PallocFindAddrGreaterEqual({_go_u(op.addr)})",
                         f"findAddrGreaterEqual({op.addr:#x})", own, bools=("ok",))
    elif kind == "addr_ranges_contains":
        own = list(want[:1]) if want else []
        _go_checked_call(body, k, ["ok"], f"ar.PallocContains({_go_u(op.addr)})", f"contains({op.addr:#x})", own,
                         bools=("ok",))
    elif kind == "addr_ranges_remove_last":
        own = list(want[:2]) if want else []
        _go_checked_call(body, k, ["base", "limit"], f"ar.PallocRemoveLast({_go_u(op.nbytes)})",
                         f"removeLast({op.nbytes:#x})", own)
    elif kind == "addr_ranges_remove_greater_equal":
        body.append(f"\tar.PallocRemoveGreaterEqual({_go_u(op.addr)})")
    elif kind == "addr_ranges_clone":
        body.append("\t{")
        body.append("\t\tclone := NewAddrRanges()")
        body.append("\t\tar.PallocCloneInto(&clone)")
        body.append("\t\tar = clone")
        body.append("\t}")
    else:
        raise ValueError(f"no Go form for {kind!r}")
    if not want:
        return
    rest = want[len(own):]
    total, n = rest[0], rest[1]
    pairs = [(rest[2 + 2 * i], rest[3 + 2 * i]) for i in range(n)]
    body.append("\t{")
    body.append(f"\t\twant := [][2]uintptr{{{', '.join(f'{{{_go_u(b)}, {_go_u(l)}}}' for b, l in pairs)}}}")
    body.append("\t\tgot, total := ar.PallocAddrRangesState()")
    body.append(f"\t\tif total != {_go_u(total)} || len(got) != len(want) {{")
    body.append(f'\t\t\tt.Errorf("step {k}: the set is %#x (totalBytes %#x), want %#x (totalBytes {total:#x})", got, total, want)')
    body.append("\t\t} else {")
    body.append("\t\t\tfor i := range want {")
    body.append("\t\t\t\tif got[i] != want[i] {")
    body.append(f'\t\t\t\t\tt.Errorf("step {k}: range %d is %#x, want %#x", i, got[i], want[i])')
    body.append("\t\t\t\t}")
    body.append("\t\t\t}")
    body.append("\t\t}")
    body.append("\t}")


def go_test_source(case: Case, cid: str, outs) -> str:
    """Returns a Go test (package runtime_test) reproducing the case with the model's expected values."""
    from palloc.goref.fuzz import goarch_platform

    p = goarch_platform(case.goarch)
    name = "TestPallocFuzz" + "".join(w.capitalize() for w in cid.replace("-", "_").split("_"))
    d = case.divergence
    body: list[str] = []
    # No allocator for a case of pure functions only: FreePageAlloc of one that never grew faults (F26).
    uses_pa = case.init is not None or any(op.on_page_alloc for op in case.ops)
    if not uses_pa:
        pass
    elif case.init is None:
        body.append("\tb := NewPallocEmptyPageAlloc()")
    else:
        body.append("\tb := NewPageAlloc(map[ChunkIdx][]BitRange{")
        for ci, rs in sorted(case.init["chunks"].items()):
            body.append(f"\t\t{ci:#x}: {{{', '.join(f'{{{i}, {n}}}' for i, n in rs)}}},")
        body.append("\t}, map[ChunkIdx][]BitRange{")
        for ci, rs in sorted((case.init.get("scav") or {}).items()):
            body.append(f"\t\t{ci:#x}: {{{', '.join(f'{{{i}, {n}}}' for i, n in rs)}}},")
        body.append("\t})")
    if uses_pa:
        body.append("\tdefer FreePageAlloc(b)")
        body.append("\tcaches := map[int]*PageCache{}")
        body.append("\t_ = caches")
    if any(isinstance(op, O.AddrRangesOp) for op in case.ops):
        body.append("\tvar ar AddrRanges")
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
        elif isinstance(op, O.AddrRangesOp):
            _go_addr_ranges(body, k, op, want)
        else:
            _go_pure(body, k, p, op, want)
        if crash:
            break
    final = next((o.state for o in reversed(outs) if o.state is not None), None)
    if final is not None and uses_pa:
        body.append("\t// The state the model expects at the end.")
        body.append(f"\tif got := b.PallocSearchAddr(); got != {_go_u(final.search_addr)} {{")
        body.append(f'\t\tt.Errorf("searchAddr = %#x, want {final.search_addr:#x}", got)')
        body.append("\t}")
        for ci, v in sorted(final.chunks.items()):
            if v is None:
                continue
            body.append("\t{")
            body.append(f"\t\td := b.PallocData({ci:#x})")
            body.append(f"\t\twantAlloc := {_go_bits(p, v[0])}")
            body.append(f"\t\twantScav := {_go_bits(p, v[1])}")
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


def divergence_from_json(d: dict | None):
    """Returns the Divergence that Divergence.to_json wrote (None for None)."""
    from palloc.goref.compare import Divergence

    if d is None:
        return None
    return Divergence(int(d["step"]), O.from_json(d["op"]) if d.get("op") else None, d["kind"], list(d["lines"]))


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
    from palloc.goref.fuzz import goarch_platform

    p = goarch_platform(case.goarch)
    for i, op in enumerate(case.ops):
        why = O.undefined_reason(op, p)
        if why:
            raise PallocError(f"{path}: operation {i} ({op!r}) is undefined in the runtime: {why}")
    return case


def replay_case(case: Case, goroot: str | None = None, overlay_files: dict[str, str] | None = None):
    """Re-runs a case on the model (its variant, if any) and the real runtime; returns the
    first divergence, or None when they agree.

    overlay_files: a patched runtime's files (patch_overlay_of): the case runs on a helper built
    on them, as verify-change found it.
    """
    from palloc.goref.fuzz import session

    if not overlay_files:
        runner = session(case.goarch, goroot=goroot, variant=case.model_variant, go_version=case.go_version)
        return runner.run_case(case)
    from palloc.goref.driver import GoHelper
    from palloc.goref.fuzz import Lockstep, goarch_platform
    from palloc.goref.go_side import GoSide
    from palloc.goref.toolchain import find_toolchain

    tc = find_toolchain(goroot)
    p = goarch_platform(case.goarch, tc.version)
    with GoHelper(toolchain=tc, goarch=case.goarch, extra_overlay=dict(overlay_files)) as h:
        runner = Lockstep(p, GoSide(p, h), host=case.host, goarch=case.goarch, go_version=tc.version)
        return runner.run_case(case)


def patch_overlay_of(text: str, source: str, goroot: str | None = None) -> dict[str, str]:
    """Applies a runtime patch (a case's recorded one, or --patch's) to copies of the toolchain's
    runtime files; returns the overlay's files. Raises PallocError when it does not apply."""
    from palloc.goref.build import cache_dir
    from palloc.goref.patch import apply_patch_text
    from palloc.goref.toolchain import find_toolchain

    tc = find_toolchain(goroot)
    return dict(apply_patch_text(text, tc.goroot, cache_dir() / "patches", source=source).files)


def replay_file(path: str | Path, goroot: str | None = None):
    """Loads and replays a failure file; returns the first divergence, or None."""
    return replay_case(load_case(path), goroot)
