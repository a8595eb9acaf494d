"""Go tests that paste into the runtime's own tests: a divergence through the stock export_test.go API.

When a case's divergence shows in what a stock export returns (PageAlloc's Alloc, Free,
Scavenge, AllocToCache; PageCache's Alloc and Flush; PallocBits' Find and Summarize,
FindBitRange64, FillAligned, PallocData's FindScavengeCandidate; AddrRanges' Add and FindSucc),
or in a crash of one, its Go test is written with that API alone, in the style of
$GOROOT/src/runtime/mpagealloc_test.go: the heap as NewPageAlloc's table of chunks with their
BitRanges (BaseChunkIdx-relative), addresses as PageBase(chunk, page), byte counts in PageSize,
the operations that lead there, and a check of the diverging call's returned values only (no
initial heap beyond what the case grows, no end-state checks). Such a file compiles in package
runtime_test of an unmodified Go tree: `stock_only` checks it names nothing of palloc's overlay,
and a slow test builds it into the runtime's tests without the overlay, where it fails on a
mutant and passes on the stock runtime (`run_pasted`).

A case is turned into that form when (stock_form): its grows all come first (the heap they make
is NewPageAlloc's table of free, scavenged chunks, as grow leaves them), every later operation is
a stock one (a forced scavenge: Scavenge always forces), and the model gives the same results on
the converted case as on the case. Otherwise, or when only internal state (summaries,
searchAddr, the scavenge index) witnesses the divergence, the test is goref/report.py's, which
uses palloc's overlay and says so in its first line (OVERLAY_FIRST_LINE).

Mirrors no Go file; writes tests in the style of mpagealloc_test.go.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import tempfile
from pathlib import Path

from palloc.spec.errors import PallocError

OVERLAY_FIRST_LINE = ("// Needs palloc's overlay: only the allocator's internal state shows this divergence. "
                      "Build it with `go test -overlay overlay.json runtime`, overlay.json mapping "
                      "$GOROOT/src/runtime/export_palloc_test.go to palloc's goref/overlay/export_palloc_test.go "
                      "(`palloc replay CASE --go-test` does this).")
# The operations a stock export_test.go runs, with the kinds of divergence they show.
STOCK_KINDS = {"alloc", "free", "scavenge", "alloc_to_cache", "cache_alloc", "cache_flush", "bits_find",
               "bits_summarize", "find_bit_range64", "fill_aligned", "find_scavenge_candidate", "addr_ranges_new",
               "addr_ranges_add", "addr_ranges_find_succ"}
# What palloc's overlay adds (every name starts with Palloc): none of it may appear in a stock test.
_OVERLAY_NAME = re.compile(r"\b(Palloc(?!Bits\b|Data\b|Sum\b|ChunkPages\b)\w+|NewPalloc\w+)\b")


def stock_only(src: str) -> list[str]:
    """Returns the names of palloc's overlay a Go test's source uses ([] for a test that pastes)."""
    return sorted(set(_OVERLAY_NAME.findall(src)))


def stock_form(case):
    """Returns the case with its leading grows made a NewPageAlloc table (chunks free, fully
    scavenged, as grow leaves them), or None when it has no such form (a grow after another
    operation, an operation the stock API lacks, a non-forced scavenge)."""
    p = _platform(case)
    ops = list(case.ops)
    k = 0
    chunks: dict[int, list] = {}
    while k < len(ops) and ops[k].kind == "grow":
        g = ops[k]
        first = _chunk_of(p, g.base)
        for ci in range(first, first + g.size // p.palloc_chunk_bytes):
            chunks[ci] = []
        k += 1
    rest = ops[k:]
    if any(op.kind not in STOCK_KINDS or (op.kind == "scavenge" and not op.force) for op in rest):
        return None
    init = case.init
    if chunks:
        if init is not None:
            return None
        init = {"chunks": chunks, "scav": {ci: [(0, p.palloc_chunk_pages)] for ci in chunks}}
    if init is None and any(op.on_page_alloc for op in rest):
        return None  # an empty allocator: NewPageAlloc of no chunk is the stock form, but nothing is grown
    return dataclasses.replace(case, init=init, ops=rest)


def _platform(case):
    from palloc.goref.fuzz import goarch_platform

    return goarch_platform(case.goarch, case.go_version)


def _chunk_of(p, addr: int) -> int:
    return ((addr - p.arena_base_offset) & p.uintptr_mask) // p.palloc_chunk_bytes


def visible(case, outs, stock, stock_outs) -> bool:
    """Says whether the stock form shows the case's divergence: a result or a crash at a stock
    operation (or any divergence of a pure one), with the model giving the converted case the
    same results as the case."""
    d = case.divergence
    if d is None or d.op is None or d.op.kind not in STOCK_KINDS:
        return False
    # A result or a crash shows in the call; so does any divergence of a pure function (the
    # contract's judge, kind "spec"), which has no state to differ in.
    if d.kind not in ("result", "crash") and not (d.kind == "spec" and not d.op.on_page_alloc):
        return False
    shift = len(case.ops) - len(stock.ops)
    step = d.step - shift
    if step < 0:
        return False
    for j in range(step + 1):
        a, b = outs[shift + j + 1], stock_outs[j + 1]
        if a.result != b.result or bool(a.crash) != bool(b.crash):
            return False
    return True


class _Go:
    """Go spellings of one platform's values, in mpagealloc_test.go's terms."""

    def __init__(self, p):
        self.p = p

    def chunk(self, ci: int) -> str:
        k = ci - self.p.base_chunk_idx
        return "BaseChunkIdx" if k == 0 else f"BaseChunkIdx + {k:#x}" if k > 0 else f"BaseChunkIdx - {-k:#x}"

    def addr(self, a: int) -> str:
        p = self.p
        if a == 0:
            return "0"
        off = (a - p.arena_base_offset) & p.uintptr_mask
        ci, rem = divmod(off, p.palloc_chunk_bytes)
        if rem % p.page_size:
            return f"{a:#x}"
        return f"PageBase({self.chunk(ci)}, {rem // p.page_size})"

    def nbytes(self, n: int) -> str:
        ps = self.p.page_size
        if n == 0:
            return "0"
        if n % ps:
            return f"{n:#x}"
        return "PageSize" if n == ps else f"{n // ps} * PageSize"

    def pages(self, n: int) -> str:
        return "PallocChunkPages" if n == self.p.palloc_chunk_pages else str(n)

    def ranges(self, rs) -> str:
        return "{" + ", ".join(f"{{{self.pages(i) if i else 0}, {self.pages(n)}}}" for i, n in rs) + "}"

    def bits(self, v: int) -> str:
        words = [(v >> (64 * w)) & (2**64 - 1) for w in range(self.p.palloc_chunk_pages // 64)]
        return f"PallocBits{{{', '.join(f'{x:#x}' for x in words)}}}"


def go_test_source(case, cid: str, outs) -> str | None:
    """Returns a stock-API Go test for the case (see the module doc), or None when it has no
    stock form that shows its divergence. outs: the model's outcomes of the case (start first)."""
    from palloc.goref.report import model_run

    stock = stock_form(case)
    if stock is None:
        return None
    stock_outs = model_run(stock)
    if not visible(case, outs, stock, stock_outs):
        return None
    p = _platform(case)
    g = _Go(p)
    d = case.divergence
    step = d.step - (len(case.ops) - len(stock.ops))
    test_file, prefix = _home(d.op.kind)
    name = prefix + "Palloc" + "".join(w.capitalize() for w in cid.replace("-", "_").split("_"))
    body: list[str] = []
    # NewPageAlloc's literal as goref/report.py's Go test writes it, repeated on purpose: here the
    # chunks and ranges are spelt as the runtime's own tests spell them (_Go), there as plain hex.
    if stock.init is not None:
        body.append("\tb := NewPageAlloc(map[ChunkIdx][]BitRange{")
        for ci, rs in sorted(stock.init["chunks"].items()):
            body.append(f"\t\t{g.chunk(ci)}: {g.ranges(rs)},")
        body.append("\t}, map[ChunkIdx][]BitRange{")
        for ci, rs in sorted((stock.init.get("scav") or {}).items()):
            body.append(f"\t\t{g.chunk(ci)}: {g.ranges(rs)},")
        body.append("\t})")
        body.append("\tdefer FreePageAlloc(b)")
    slots = sorted({op.slot for op in stock.ops[:step + 1] if hasattr(op, "slot")})
    if slots:
        body.append("\tvar " + ", ".join(f"c{s}" for s in slots) + " PageCache")
    if any(op.kind.startswith("addr_ranges") for op in stock.ops[:step + 1]):
        body.append("\tvar ar AddrRanges")
    for k, op in enumerate(stock.ops[:step + 1]):
        last = k == step
        want = stock_outs[k + 1].result if last else None
        if last:
            body.append("")
            body.append(f"\t// {d.kind} divergence: palloc's model of the allocator says this call returns what is "
                        "checked below" + ("; the runtime crashed here" if d.kind == "crash" else "") + ".")
        body += _go_op(g, op, want, last)
    header = [
        f"// {name} is a counterexample palloc found: a {d.kind} divergence at {_short(repr(d.op))}.",
        f"// It uses only export_test.go: paste it into src/runtime/{test_file}.",
        f"// The expected values are palloc's model's, on {p.name}.",
        "",
        "package runtime_test",
        "",
        "import (",
        "\t. \"runtime\"",
        "\t\"testing\"",
        ")",
        "",
        f"func {name}(t *testing.T) {{",
        "\tif GOOS == \"openbsd\" && testing.Short() {",
        "\t\tt.Skip(\"skipping because virtual memory is limited; see #36210\")",
        "\t}",
    ]
    return "\n".join(header + body + ["}", ""])


def _home(kind: str) -> tuple[str, str]:
    """Returns the runtime test file a stock test of kind belongs in, and its tests' name prefix."""
    if kind.startswith("bits_") or kind == "find_bit_range64":
        return "mpallocbits_test.go", "TestPallocBits"
    if kind in ("fill_aligned", "find_scavenge_candidate"):
        return "mgcscavenge_test.go", "TestScavenge"
    if kind.startswith("addr_ranges"):
        return "mranges_test.go", "TestAddrRanges"
    return "mpagealloc_test.go", "TestPageAlloc"


def _short(text: str, n: int = 100) -> str:
    return text if len(text) <= n else text[:n - 3] + "..."


def _go_op(g: _Go, op, want, check: bool) -> list[str]:
    """Returns the Go lines of one operation; check: compare its results with want."""
    k = op.kind
    if k == "free":
        return [f"\tb.Free({g.addr(op.base)}, {op.npages})"]
    if k == "cache_flush":
        return [f"\tc{op.slot}.Flush(b)"]
    if k == "addr_ranges_new":
        return ["\tar = NewAddrRanges()"]
    if k == "addr_ranges_add":
        return [f"\tar.Add(MakeAddrRange({op.base:#x}, {op.limit:#x}))"]
    if k == "alloc_to_cache":
        lines = [f"\tc{op.slot} = b.AllocToCache()"]
        if check and want:
            c = f"c{op.slot}"
            lines += [f"\tif {c}.Base() != {g.addr(want[0])} || {c}.Cache() != {want[1]:#x} || {c}.Scav() != {want[2]:#x} {{",
                      f"\t\tt.Errorf(\"AllocToCache() = (%#x, %#x, %#x), want (%#x, %#x, %#x)\", {c}.Base(), {c}.Cache(), "
                      f"{c}.Scav(), {g.addr(want[0])}, uint64({want[1]:#x}), uint64({want[2]:#x}))",
                      "\t}"]
        return lines
    calls = {
        "alloc": (["addr", "scav"], f"b.Alloc({op.npages})" if k == "alloc" else "", ["addr", "nbytes"]),
        "cache_alloc": (["addr", "scav"], f"c{getattr(op, 'slot', 0)}.Alloc({getattr(op, 'npages', 0)})", ["addr", "nbytes"]),
        "scavenge": (["released"], f"b.Scavenge({g.nbytes(op.nbytes)})" if k == "scavenge" else "", ["nbytes"]),
        "bits_find": (["i", "si"], "", ["int", "int"]),
        "bits_summarize": (["sum"], "", ["sum"]),
        "find_bit_range64": (["i"], "", ["int"]),
        "fill_aligned": (["x"], "", ["hex"]),
        "find_scavenge_candidate": (["base", "npages"], "", ["int", "int"]),
        "addr_ranges_find_succ": (["i"], "", ["int"]),
    }
    names, call, forms = calls[k]
    setup: list[str] = []
    if k == "bits_find":
        setup, call = [f"bits := {g.bits(op.bits)}"], f"bits.Find({op.npages}, {op.search_idx})"
    elif k == "bits_summarize":
        setup, call = [f"bits := {g.bits(op.bits)}"], "bits.Summarize()"
    elif k == "find_bit_range64":
        call = f"FindBitRange64({op.c:#x}, {op.n})"
    elif k == "fill_aligned":
        call = f"FillAligned({op.x:#x}, {op.m})"
    elif k == "find_scavenge_candidate":
        setup = ["var d PallocData", f"*d.PallocBits() = {g.bits(op.alloc)}", f"*d.Scavenged() = {g.bits(op.scav)}"]
        call = f"d.FindScavengeCandidate({op.search_idx}, {op.minimum}, {op.max})"
    elif k == "addr_ranges_find_succ":
        call = f"ar.FindSucc({op.addr:#x})"
    if not check or not want:
        if not setup:
            return [f"\t{call}"]
        return ["\t{"] + [f"\t\t{s}" for s in setup] + [f"\t\t{call}", "\t}"]
    spell = {"addr": g.addr, "nbytes": g.nbytes, "int": str, "hex": lambda v: f"{v:#x}",
             "sum": lambda v: f"PackPallocSum({v & ((1 << 21) - 1)}, {(v >> 21) & ((1 << 21) - 1)}, {(v >> 42) & ((1 << 21) - 1)})"
             if v < (1 << 63) else f"PallocSum({v:#x})"}
    wants = [spell[f](w) for f, w in zip(forms, want)]
    lines = ["\t{"] + [f"\t\t{s}" for s in setup]
    lines.append(f"\t\t{', '.join(names)} := {call}")
    conds = " || ".join(f"{n} != {w}" for n, w in zip(names, wants))
    got = ", ".join("%#x" for _ in names)
    lines.append(f"\t\tif {conds} {{")
    many = len(names) > 1
    lines.append(f"\t\t\tt.Errorf(\"{call.removeprefix('b.').replace(chr(34), '')} = {'(' if many else ''}{got}"
                 f"{')' if many else ''}, want {'(' if many else ''}{got}{')' if many else ''}\", "
                 f"{', '.join(names)}, {', '.join(wants)})")
    lines.append("\t\t}")
    lines.append("\t}")
    return lines


def go_test_for(case, cid: str, outs) -> str:
    """Returns the case's Go test: the stock one when there is one, else report.py's, which
    uses palloc's overlay and says so in its first line."""
    from palloc.goref import report

    src = go_test_source(case, cid, outs)
    if src is not None:
        return src
    return OVERLAY_FIRST_LINE + "\n" + report.go_test_source(case, cid, outs)


# --- proving it pastes: the runtime's own tests without palloc's overlay ------------------------


def run_pasted(test_file: str | Path, goarch: str = "amd64", goroot: str | None = None,
               extra_overlay: dict[str, str] | None = None, timeout: float = 60.0):
    """Builds package runtime's tests with test_file added (and a patch's files, if any) but
    none of palloc's overlay, as a copy in a scratch folder (the user's GOROOT is never written),
    runs test_file's test and returns a goref.gotest.GoTestResult. Raises PallocError when it
    does not compile. Not cached: each call builds (a minute or more)."""
    import json

    from palloc.goref import procs
    from palloc.goref.build import BUILD_ENV, compile_error_summary, target_goarch, target_goos
    from palloc.goref.gotest import _TEST_FUNC, GoTestResult, crash_lines, passed_or_failed
    from palloc.goref.targets import target
    from palloc.goref.toolchain import find_toolchain

    src = Path(test_file).read_text()
    m = _TEST_FUNC.search(src)
    if m is None:
        raise PallocError(f"{test_file} has no `func TestX(t *testing.T)`")
    name = m.group(1)
    tc = find_toolchain(goroot)
    with tempfile.TemporaryDirectory(prefix="palloc-paste-") as work:
        copy = Path(work) / f"palloc_pasted_{Path(test_file).stem}.go"
        copy.write_text(src)
        replace = {str(tc.goroot / rel): str(Path(p).resolve()) if p else "" for rel, p in (extra_overlay or {}).items()}
        replace[str(tc.runtime_dir / copy.name)] = str(copy)
        ov = Path(work) / "overlay.json"
        ov.write_text(json.dumps({"Replace": replace}))
        binary = Path(work) / "runtime.test"
        env = tc.env(target_goarch(goarch), **BUILD_ENV, GOOS=target_goos(tc, goarch))
        r = procs.run([str(tc.go), "test", "-c", "-vet=off", "-overlay", str(ov), "-o", str(binary), "runtime"],
                      env=env, cwd=work, text=True, timeout=1800)
        if r.returncode != 0 or not binary.is_file():
            raise PallocError(f"the pasted test does not build: {compile_error_summary(r.stderr + r.stdout)}")
        cmd = [*target(goarch).command(binary, tc.goroot), f"-test.run=^{name}$", "-test.v", "-test.count=1",
               f"-test.timeout={int(timeout)}s"]
        try:
            r = procs.run(cmd, text=True, timeout=timeout + 30, env={**tc.env(goarch), "GOTRACEBACK": "crash"})
        except subprocess.TimeoutExpired:
            return GoTestResult(name, False, ["hung"], "", "hang")
    verdict = passed_or_failed(name, r, r"\S+\.go")  # a pasted test's errors may name any .go file
    if verdict is not None:
        return verdict
    out = r.stdout + r.stderr
    return GoTestResult(name, False, crash_lines(out) or [f"exit {r.returncode}"], out, "crash")
