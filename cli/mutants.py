"""`palloc mutants`: run verify-change over the mutant corpus and report what each check catches.

For every patch of goref/mutants/manifest.toml (or those named with --only), on every GOARCH and
seed asked for: the verdict, which checks caught it, the time to detection after the helper build,
whether the runtime's own tests caught it, and whether that matches the manifest's expected
verdict (a mutant breaks when any of its GOARCHes catches it, as verify-change over several
GOARCHes says). The cells (mutant x GOARCH x seed) run as tasks on Dask (goref/matrix.py): a
local cluster by default, or the one --scheduler names. Writes a Markdown and a JSON report,
rewritten as each cell finishes, so an interrupted run keeps what it measured.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from palloc.cli._args import positive_int
from palloc.goref.files import write_atomic
from palloc.goref.targets import GOARCH_HELP
from palloc.spec.errors import PallocError


def register(sub) -> None:
    p = sub.add_parser(
        "mutants",
        help="run verify-change over the mutant corpus and report what catches each mutant",
        description="Run `palloc verify-change` on every patch of the mutant corpus (goref/mutants/) and write a "
        "Markdown and JSON report: per patch the verdict, the checks that caught it, time to detection after the "
        "build, and whether the runtime's own page-allocator tests caught it. Exit 1 if a verdict differs from the "
        "manifest's expectation (a benign patch flagged, or a `breaks` mutant missed).",
    )
    p.add_argument("--only", nargs="+", metavar="ID", help="only these mutant ids")
    p.add_argument("--kind", choices=["mutant", "benign"], help="only mutants or only benign patches")
    p.add_argument("--seconds", type=float, default=30.0, help="differential budget per mutant and GOARCH (default %(default)s)")
    p.add_argument("--goarch", action="append", metavar="GOARCH", help=GOARCH_HELP + " (default amd64)")
    p.add_argument("--seed", type=int, default=0, help="campaign seed (default 0)")
    p.add_argument("--seeds", metavar="S,S,...", help="several seeds: a cell per mutant, GOARCH and seed (instead of --seed)")
    p.add_argument("--out", type=Path, default=Path("palloc-mutants"), help="report directory (default %(default)s)")
    p.add_argument("--no-fuzz", action="store_true", help="skip the differential campaign (baseline and start-up only)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="run the cells on this Dask cluster (default: a local cluster, one worker per core)")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="workers of the local Dask cluster (default: one per core)")
    p.add_argument("--json", action="store_true", help="print the JSON report to stdout")
    p.set_defaults(run=run)


def _matches(entry: dict, verdict: str) -> bool:
    """Returns whether a measured verdict agrees with the manifest's expectation."""
    exp = entry["expected"]
    if exp == "breaks":
        return verdict == "breaks"
    if exp in ("equivalent", "no divergence found"):
        return verdict == "no divergence found"
    return False


def _num(x) -> str:
    return "-" if x is None else str(x)


def markdown(rows: list[dict], meta: dict, cells: list[dict] | None = None) -> str:
    out = [
        "# palloc mutants",
        "",
        f"Toolchain {meta['toolchain']}, GOARCH {', '.join(meta['goarches'])}, differential budget {meta['seconds']} s "
        f"per mutant and GOARCH, seed {', '.join(map(str, meta.get('seeds', [meta.get('seed', 0)])))}. {len(rows)} patches.",
        "",
        "| id | bug | component | expected | verdict | caught by | first detection after build (s) | differential detection after build (s) | runtime's own tests | as expected |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['id']} | {r['bug']} | {r['component']} | {r['expected']} | {r['verdict']} | "
            f"{', '.join(r['caught_by']) or '-'} | {_num(r.get('detected_after_build_s'))} | {_num(r.get('differential_detected_after_build_s'))} | "
            f"{r['runtime_tests']} | {'yes' if r['as_expected'] else '**no**'} |"
        )
    only_palloc = [r["id"] for r in rows if r["verdict"] == "breaks" and r["runtime_tests"] == "missed"]
    out += ["", f"Caught by palloc but missed by the runtime's own tests: {', '.join(only_palloc) or 'none'}."]
    if cells and len(meta["goarches"]) > 1:
        out += ["", "Per GOARCH (B: breaks, with the differential's detection after the build in s, or the check that "
                "caught it; -: no divergence found; E: error; the cell's wall time in brackets):", "",
                "| id | " + " | ".join(meta["goarches"]) + " |", "|---|" + "---|" * len(meta["goarches"])]
        by = {}
        for c in cells:
            by.setdefault((c["id"], c["goarch"]), []).append(c)
        for r in rows:
            cols = []
            for a in meta["goarches"]:
                cs = by.get((r["id"], a), [])
                cols.append(" ".join(_mark(c) for c in cs) or "")
            out.append(f"| {r['id']} | " + " | ".join(cols) + " |")
    not_run = sorted({n for r in rows for n in r.get("not_run", [])})
    if not_run:
        out += ["", "Checks that could not run: " + "; ".join(not_run)]
    return "\n".join(out) + "\n"


def _mark(c: dict) -> str:
    v = c.get("verdict")
    t = f" [{c['seconds']:.0f}]" if c.get("seconds") is not None else ""
    if v == "breaks":
        d = c.get("differential_detected_after_build_s")
        return (f"B {d}" if d is not None else "B " + ",".join(c.get("caught_by") or [])) + t
    if v == "no divergence found":
        return "-" + t
    return "E" + t


def merge_cells(entry: dict, cells: list[dict]) -> dict:
    """Returns a mutant's row from its cells (one per GOARCH and seed): breaks when any cell
    breaks (as verify-change over several GOARCHes), caught_by their union, the earliest detection."""
    row = {k: entry[k] for k in ("id", "bug", "component", "expected", "kind")}
    verdicts = [c.get("verdict") for c in cells]
    if "breaks" in verdicts:
        verdict = "breaks"
    elif verdicts and all(v == "no divergence found" for v in verdicts):
        verdict = "no divergence found"
    else:
        verdict = next((v for v in verdicts if v not in ("breaks", "no divergence found")), "error")
    det = [c["detected_after_build_s"] for c in cells if c.get("detected_after_build_s") is not None]
    diff = [c["differential_detected_after_build_s"] for c in cells if c.get("differential_detected_after_build_s") is not None]
    rts = [c.get("runtime_tests") for c in cells]
    row.update(
        verdict=verdict,
        caught_by=sorted({x for c in cells for x in c.get("caught_by") or []}),
        detected_after_build_s=min(det) if det else None,
        differential_detected_after_build_s=min(diff) if diff else None,
        runtime_tests="caught" if "caught" in rts else "missed" if "missed" in rts else "not run",
        not_run=sorted({n for c in cells for n in c.get("not_run") or []}),
        seconds=round(sum(c.get("seconds") or 0 for c in cells), 1),
    )
    errors = [c["why"] for c in cells if c.get("verdict") == "error" and c.get("why")]
    if errors:
        row["error"] = errors[0]
    row["as_expected"] = _matches(entry, verdict)
    return row


def run(args) -> int:
    from palloc.goref import matrix
    from palloc.goref.baseline import corpus
    from palloc.goref.targets import parse_goarches, require_runnable, skipped_goarches
    from palloc.goref.toolchain import find_toolchain

    entries = corpus(args.only)
    if args.kind:
        entries = [e for e in entries if e["kind"] == args.kind]
    if not entries:
        raise PallocError("no mutant matches; see goref/mutants/manifest.toml for ids")
    goarches = parse_goarches(args.goarch, ["amd64"])
    if not args.scheduler:  # a remote cluster's workers have their own emulators
        require_runnable(goarches)
    seeds = _seeds(args.seeds) if args.seeds else [args.seed]
    tc = find_toolchain()
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"toolchain": tc.version, "goarches": goarches, "seconds": args.seconds, "seed": seeds[0], "seeds": seeds,
            "scheduler": args.scheduler or f"local ({args.workers or matrix.default_workers()} workers)"}
    quiet = args.json
    for t in skipped_goarches(args.goarch):
        print(f"palloc mutants: {t.name} skipped: {t.why}", file=sys.stderr)
    cells = [matrix.Cell("mutant", (e["id"], a, s), {
        "id": e["id"], "patch": e["patch"], "goarch": a, "seed": s, "seconds": args.seconds, "out": str(args.out.resolve()),
        "fuzz": not args.no_fuzz}) for e in entries for a in goarches for s in seeds]
    by_id = {e["id"]: e for e in entries}
    done: dict[tuple, dict] = {}
    t0 = time.monotonic()

    def write() -> tuple[list[dict], list[dict]]:
        flat = [dict(done[c.key], id=c.key[0], goarch=c.key[1], seed=c.key[2]) for c in cells if c.key in done]
        rows = [merge_cells(e, [x for x in flat if x["id"] == e["id"]]) for e in entries
                if any(x["id"] == e["id"] for x in flat)]
        doc = {"meta": meta, "results": rows, "cells": flat}
        for name, text in (("mutants.json", json.dumps(doc, indent=1, default=str) + "\n"),
                           ("mutants.md", markdown(rows, meta, flat))):
            write_atomic(args.out / name, text)
        return rows, flat

    def arrived(cell, res) -> None:
        done[cell.key] = res
        if not quiet:
            e = by_id[cell.key[0]]
            print(f"[{len(done)}/{len(cells)}] {e['id']:44} {cell.key[1]:8} {res.get('verdict', '?'):20} by "
                  f"{','.join(res.get('caught_by') or []) or '-':28} runtime tests {res.get('runtime_tests', '-'):8} "
                  f"({res.get('seconds', '-')} s)", file=sys.stderr, flush=True)
        write()

    matrix.run(matrix.mutant_cell, cells, scheduler=args.scheduler, workers=args.workers, desc="mutants",
               on_result=arrived, progress=None if not quiet else False)
    rows, flat = write()
    meta["wall_seconds"] = round(time.monotonic() - t0, 1)
    rows, flat = write()
    if args.json:
        print(json.dumps({"meta": meta, "results": rows, "cells": flat}, indent=1, default=str))
    else:
        print(f"wrote {args.out / 'mutants.md'} and {args.out / 'mutants.json'} ({meta['wall_seconds']} s)")
    if any(r["verdict"] == "error" for r in rows) and all(r["as_expected"] or r["verdict"] == "error" for r in rows):
        raise PallocError(f"{sum(r['verdict'] == 'error' for r in rows)} mutant(s) could not be checked, e.g. "
                          f"{next(r for r in rows if r['verdict'] == 'error').get('error', '?')[:200]}; see {args.out / 'mutants.md'}")
    return 0 if all(r["as_expected"] for r in rows) else 1


def _seeds(text: str) -> list[int]:
    try:
        out = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise PallocError(f"--seeds must be comma-separated integers, not {text[:40]!r}") from None
    if not out:
        raise PallocError("--seeds names no seed")
    return list(dict.fromkeys(out))
