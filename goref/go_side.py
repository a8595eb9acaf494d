"""Runs fuzzer operations on the real runtime through the Go helper, in the normal form of compare.py.

The helper (goref/overlay/palloc_server_test.go; protocol in goref/README.md) answers a batch of
JSON operations with one result each. A case becomes one batch: "new" (empty, or NewPageAlloc
with the case's chunks), then each operation followed by "dump", then "drop". A helper that dies
or hangs part-way answers the operations it reached and then one crash result (go-throw,
go-fault, go-hang), which becomes the crashing operation's Outcome.

Mirrors no Go file: it is the harness's adapter to the Go 1.27 helper.
"""

from __future__ import annotations

from typing import Any

from palloc.goref import ops as O
from palloc.goref.compare import Outcome, State
from palloc.spec.errors import PallocError

# The driver's death kinds (goref/driver.py) as the model's crash kinds. An unrecovered panic in
# the runtime is an index or nil fault there, which the model reports as GoFault.
_CRASH_KINDS = {"go-throw": "throw", "go-fault": "fault", "go-hang": "hang", "go-panic": "fault", "go-exit": "fault"}


def op_request(op: O.Op) -> dict[str, Any]:
    """Returns the helper's JSON for an operation (large integers as hex strings, exactly)."""
    d = op.to_json()
    for k, v in d.items():
        if isinstance(v, int) and not isinstance(v, bool) and v > (1 << 53):
            d[k] = hex(v)
    if isinstance(op, O.FindScavengeCandidate):
        d["alloc"], d["scav"] = hex(op.alloc), hex(op.scav)
    if isinstance(op, (O.BitsFind, O.BitsSummarize)):
        d["bits"] = hex(op.bits)
    return d


def init_request(init: dict | None) -> dict[str, Any]:
    """Returns the helper's "new" for a case's initial heap (empty, or NewPageAlloc(chunks, scav))."""
    if init is None:
        return {"op": "new", "empty": True}
    conv = lambda m: {hex(int(k)): [[int(i), int(n)] for i, n in v] for k, v in (m or {}).items()}  # noqa: E731
    return {"op": "new", "chunks": conv(init.get("chunks")), "scav": conv(init.get("scav"))}


def _h(x) -> int:
    return int(x, 16) if isinstance(x, str) else int(x)


def state_from_dump(d: dict[str, Any]) -> State:
    """Converts the helper's "dump" result into the normal form."""
    chunks: dict[int, Any] = {}
    for c in d["chunks"]:
        chunks[_h(c["ci"])] = None if c.get("missing") else (_h(c["alloc"]), _h(c["scav"]))
    si = d["scav_index"]
    scav_chunks = {_h(c["ci"]): (None if c.get("missing") else _h(c["packed"])) for c in si["chunks"]}
    summary, lens, mapped = [], [], []
    for lv in d["summary"]:
        vals: dict[int, int] = {}
        for seg in lv["entries"]:
            lo = int(seg["lo"])
            for k, raw in enumerate(seg["raw"]):
                vals[lo + k] = _h(raw)
        summary.append(vals)
        lens.append(int(lv["len"]))
        mapped.append(tuple((int(a), int(b)) for a, b in (lv.get("mapped") or [])))
    caches = {int(c["slot"]): (_h(c["base"]), _h(c["cache"]), _h(c["scav"])) for c in d.get("caches", [])}
    return State(
        search_addr=_h(d["search_addr"]),
        start=_h(d["start"]),
        end=_h(d["end"]),
        in_use=tuple((_h(b), _h(l)) for b, l in d["in_use"]),
        chunks=chunks,
        summary=tuple(summary),
        scav_chunks=scav_chunks,
        scav={
            "gen": int(si["gen"]),
            "free_hwm": _h(si["free_hwm"]),
            "min_heap_idx": _h(si["min_heap_idx"]),
            "search_addr_bg": _h(si["search_addr_bg"]),
            "search_addr_bg_marked": int(bool(si["search_addr_bg_marked"])),
            "search_addr_force": _h(si["search_addr_force"]),
            "search_addr_force_marked": int(bool(si["search_addr_force_marked"])),
        },
        caches=caches,
        summary_len=tuple(lens),
        summary_mapped=tuple(mapped),
        scav_window=(_h(si["min"]), _h(si["max"])) if "min" in si and "max" in si else None,
    )


# One branch per operation kind, each reading its own result fields: alike by design (a table).
def result_of(op: O.Op, r: dict[str, Any]) -> tuple[int, ...] | None:
    """Converts one operation's helper result into the model's result tuple."""
    k = op.kind
    if k in ("alloc",):
        return (_h(r["addr"]), _h(r["scav"]))
    if k == "cache_alloc":
        return (_h(r["addr"]), _h(r["scav_bytes"]))
    if k == "alloc_to_cache":
        return (_h(r["base"]), _h(r["cache"]), _h(r["scav"]))
    if k == "scavenge":
        return (_h(r["released"]),)
    if k == "find":
        return (_h(r["addr"]), _h(r["search_addr"]))
    if k == "alloc_range":
        return (_h(r["scav"]),)
    if k == "bits_find":
        return (_h(r["index"]), _h(r["search_idx"]))
    if k == "bits_summarize":
        return (_h(r["sum"]),)
    if k == "find_bit_range64":
        return (_h(r["index"]),)
    if k == "find_scavenge_candidate":
        return (_h(r["base"]), _h(r["npages"]))
    if k == "fill_aligned":
        return (_h(r["x"]),)
    if k.startswith("addr_ranges_") and k != "addr_ranges_new":
        return addr_ranges_result(k, r)
    return None


# The addrRanges verbs' own result fields, before the set after the verb (model_side.addr_ranges_words).
ADDR_RANGES_FIELDS = {
    "addr_ranges_find_succ": ("index",), "addr_ranges_find_addr_greater_equal": ("addr", "found"),
    "addr_ranges_contains": ("contains",), "addr_ranges_remove_last": ("removed",),
}


def addr_ranges_result(kind: str, r: dict[str, Any]) -> tuple[int, ...]:
    """Converts an addrRanges verb's helper result: its own fields, then totalBytes, the number
    of ranges and each range's base and limit."""
    out: list[int] = []
    for f in ADDR_RANGES_FIELDS.get(kind, ()):
        v = r[f]
        if isinstance(v, list):
            out += (_h(x) for x in v)
        else:
            out.append(int(v) if isinstance(v, bool) else _h(v))
    ranges = r.get("ranges") or []
    out += (_h(r["total_bytes"]), len(ranges))
    for b, l in ranges:
        out += (_h(b), _h(l))
    return tuple(out)


class HelperError(PallocError):
    """The helper refused a request (a protocol error, not a runtime crash): a harness bug."""


def _crash_outcome(c: tuple[str, str], r: dict[str, Any], result=None) -> Outcome:
    """Returns the Outcome of a helper's death result c/r: its kind and message, the runtime's
    "runtime: ..." lines before a throw as detail, and the first frames of its stack."""
    detail = "; ".join(x.removeprefix("runtime: ") for x in r.get("detail") or []) or None
    stack = tuple(f for f in r.get("stack") or [] if not f.startswith(("runtime.throw ", "runtime.fatalthrow",
                                                                         "runtime.systemstack")))
    return Outcome(result=result, crash=c, detail=detail, stack=stack or None)


def crash_of(r: dict[str, Any]) -> tuple[str, str] | None:
    """Returns (kind, message) if a helper result is a crash, None if it is ok; raises on errors."""
    kind = r.get("kind", "ok")
    if kind == "ok":
        return None
    if kind in _CRASH_KINDS:
        return (_CRASH_KINDS[kind], str(r.get("msg", "")))
    raise HelperError(f"the Go helper refused an operation ({r.get('msg', r)}); this is a palloc bug, please report it")


class GoSide:
    """The real runtime behind a helper; `helper.call(ops)` answers a batch (goref/driver.GoHelper)."""

    name = "runtime"

    def __init__(self, p, helper):
        self.p = p
        self.helper = helper

    def run(self, init: dict | None, ops: list[O.Op], timeout: float | None = None) -> list[Outcome]:
        """Runs a case on a fresh allocator; returns one Outcome for the start and one per op.

        Stops at the first crash (the helper process is then gone; the driver restarts it).
        timeout: seconds before the case counts as hung (default: the helper's calibrated
        watchdog, GoHelper.timeout_for).
        """
        page_ops = [op for op in ops if op.on_page_alloc]
        reqs: list[dict[str, Any]] = [init_request(init), {"op": "dump"}]
        for op in ops:
            reqs.append(op_request(op))
            if op.on_page_alloc:
                reqs.append({"op": "dump"})
        if (init and init.get("chunks")) or any(op.kind == "grow" for op in ops):
            # FreePageAlloc faults on an allocator that never grew (FINDINGS.md F26): leave it.
            reqs.append({"op": "drop"})
        del page_ops
        res = self.helper.call(reqs, timeout=timeout, raw=True)
        out: list[Outcome] = []
        # The start: "new" then "dump".
        c = crash_of(res[0]) if res else ("fault", "helper returned nothing")
        if c:
            return [Outcome(crash=c)]
        out.append(Outcome(state=state_from_dump(res[1])) if len(res) > 1 and not crash_of(res[1]) else Outcome(crash=("fault", "no dump")))
        k = 2
        for op in ops:
            if k >= len(res):
                break
            r = res[k]
            c = crash_of(r)
            if c:
                out.append(_crash_outcome(c, r))
                break
            result = result_of(op, r)
            k += 1
            st = None
            if op.on_page_alloc:
                if k >= len(res):
                    out.append(Outcome(result=result, crash=("fault", "helper died before the state dump")))
                    break
                c = crash_of(res[k])
                if c:
                    out.append(_crash_outcome(c, res[k], result))
                    break
                st = state_from_dump(res[k])
                k += 1
            out.append(Outcome(result=result, state=st))
        return out


def open_helper(goarch: str | None = None, goroot: str | None = None):
    """Returns (GoHelper for goarch, toolchain); the helper is built once and cached (goref/build.py)."""
    from palloc.goref.driver import GoHelper
    from palloc.goref.toolchain import find_toolchain

    tc = find_toolchain(goroot)
    return GoHelper(toolchain=tc, goarch=goarch), tc


def native_bench(p, trace, goroot: str | None = None) -> dict:
    """Replays a model/workload.py trace in a tight loop inside the Go helper (op "bench").

    The heap is the workload's (new empty allocator, grow of workload.heap_range(p)). Returns
    the helper's figures: elapsed_ns (the loop only), ops_per_second, and results (every alloc's
    address in order, as workload.replay(record=True) records them on the model).
    """
    from palloc.goref.fuzz import GOARCH_PLATFORM
    from palloc.model import workload
    from palloc.spec.errors import PallocError

    goarch = next((a for a, name in GOARCH_PLATFORM.items() if name == p.name), None)
    if goarch is None:
        raise PallocError(f"no native helper for {p.name}; use --platform linux/amd64 or linux/386")
    helper, tc = open_helper(goarch, goroot)
    base, size = workload.heap_range(p)
    try:
        res = helper.call(
            [{"op": "new", "empty": True}, {"op": "grow", "base": base, "size": size},
             {"op": "bench", "trace": {"ops": [list(op) for op in trace]}}, {"op": "drop"}],
            timeout=600,
        )
    finally:
        helper.close()
    r = res[2] if len(res) > 2 else (res[-1] if res else {})
    if r.get("kind") != "ok":
        raise PallocError(f"the Go helper's bench failed ({r.get('kind')}: {r.get('msg', '')}); rebuild it with `palloc goref build --force`")
    secs = r["elapsed_ns"] / 1e9
    results = [a if isinstance(a, int) else int(a, 16) for a in r["results"]]
    return {
        "go_version": tc.version.removeprefix("go"),
        "goarch": goarch,
        "seconds": round(secs, 4),
        "ops_per_second": round(len(trace) / secs) if secs > 0 else None,
        "failed_allocs": r.get("failed_allocs"),
        "results": results,
    }
