"""`palloc mutants`: run verify-change over the mutant corpus and report what each check catches.

For every patch of goref/mutants/manifest.toml (or those named with --only): the verdict, which
checks caught it, the time to detection after the helper build, whether the runtime's own tests
caught it, and whether that matches the manifest's expected verdict. Writes a Markdown and a JSON
report; results are written after every mutant, so an interrupted run keeps what it measured.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from palloc.goref.files import write_atomic
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
    p.add_argument("--goarch", action="append", choices=["amd64", "386"], help="GOARCH (repeatable; default amd64)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("palloc-mutants"), help="report directory (default %(default)s)")
    p.add_argument("--no-fuzz", action="store_true", help="skip the differential campaign (baseline and start-up only)")
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


def markdown(rows: list[dict], meta: dict) -> str:
    out = [
        "# palloc mutants",
        "",
        f"Toolchain {meta['toolchain']}, GOARCH {', '.join(meta['goarches'])}, differential budget {meta['seconds']} s "
        f"per mutant and GOARCH, seed {meta['seed']}. {len(rows)} patches.",
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
    not_run = sorted({n for r in rows for n in r.get("not_run", [])})
    if not_run:
        out += ["", "Checks that could not run: " + "; ".join(not_run)]
    return "\n".join(out) + "\n"


def run(args) -> int:
    from palloc.cli.verify_change import verify
    from palloc.goref.baseline import MUTANTS_DIR, corpus
    from palloc.goref.build import cache_dir
    from palloc.goref.patch import apply_patch
    from palloc.goref.toolchain import find_toolchain

    entries = corpus(args.only)
    if args.kind:
        entries = [e for e in entries if e["kind"] == args.kind]
    if not entries:
        raise PallocError("no mutant matches; see goref/mutants/manifest.toml for ids")
    tc = find_toolchain()
    goarches = args.goarch or ["amd64"]
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"toolchain": tc.version, "goarches": goarches, "seconds": args.seconds, "seed": args.seed}
    rows: list[dict] = []
    quiet = args.json
    for i, e in enumerate(entries):
        t0 = time.monotonic()
        row = {k: e[k] for k in ("id", "bug", "component", "expected", "kind")}
        try:
            ov = apply_patch(MUTANTS_DIR / e["patch"], tc.goroot, cache_dir() / "patches")
            rep = verify(ov, tc, goarches, args.seconds, args.seed, args.out / "replays", True, not args.no_fuzz, e["id"],
                         go_test=False, jobs=1)  # the corpus measures detection time: one process, no Go test
            rt = [c for c in rep["checks"] if c["name"] == "runtime-tests" and c["status"] == "ran"]
            first = rep["first_detection"]
            diff = [c for c in rep["checks"] if c["name"] == "differential" and c["verdict"] == "breaks"]
            row.update(
                verdict=rep["verdict"],
                caught_by=rep["caught_by"],
                detected_after_build_s=round(first["after_build_seconds"], 1) if first and first["after_build_seconds"] is not None else None,
                differential_detected_after_build_s=min(round(c["after_build_seconds"], 1) for c in diff) if diff else None,
                runtime_tests="caught" if any(c["verdict"] == "breaks" for c in rt) else ("missed" if rt else "not run"),
                build_seconds=rep["build_seconds"],
                not_run=rep["not_run"],
                checks=rep["checks"],
            )
        except PallocError as err:
            row.update(verdict="error", caught_by=[], detected_after_build_s=None, differential_detected_after_build_s=None,
                       runtime_tests="not run", error=str(err))
        row["as_expected"] = _matches(e, row["verdict"])
        row["seconds"] = round(time.monotonic() - t0, 1)
        rows.append(row)
        if not quiet:
            print(f"[{i + 1}/{len(entries)}] {e['id']:44} {row['verdict']:20} by {','.join(row['caught_by']) or '-':28} "
                  f"runtime tests {row['runtime_tests']:8} ({row['seconds']} s)", file=sys.stderr, flush=True)
        doc = {"meta": meta, "results": rows}
        for name, text in (("mutants.json", json.dumps(doc, indent=1, default=str) + "\n"), ("mutants.md", markdown(rows, meta))):
            write_atomic(args.out / name, text)
    if args.json:
        print(json.dumps({"meta": meta, "results": rows}, indent=1, default=str))
    else:
        print(f"wrote {args.out / 'mutants.md'} and {args.out / 'mutants.json'}")
    return 0 if all(r["as_expected"] for r in rows) else 1
