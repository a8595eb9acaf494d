"""Merge `palloc mutants` JSON reports of separate runs (one per GOARCH) into the corpus's records.

A full corpus run on one GOARCH takes about half an hour on a shared 2-core machine, so amd64 and
386 are measured by separate `palloc mutants --goarch X --out DIR` runs; this joins their
`mutants.json` files per mutant the way verify-change joins GOARCHes within one run (a mutant
breaks if any check on any GOARCH breaks; the first detection is the earliest; a later run's
row for the same mutant and GOARCH replaces an earlier one, for re-runs), and writes
goref/mutants/palloc-results.json and REPORT.md (the table of cli/mutants.py, plus a table of
the differential's and the runtime's own tests' verdicts per GOARCH). Then run
`python -m palloc.goref.mutants.generate` to refresh manifest.toml.

Run: python -m palloc.goref.mutants.merge_runs RUN.json [RUN.json ...] [--note TEXT]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from palloc.goref.files import write_atomic

HERE = Path(__file__).resolve().parent


def merge_rows(runs: list[dict]) -> tuple[list[dict], dict]:
    """Returns (rows, meta) of the runs joined per mutant id, in the first run's order."""
    from palloc.cli.mutants import _matches
    from palloc.goref.baseline import corpus

    entries = {e["id"]: e for e in corpus(None)}
    order: list[str] = []
    parts: dict[str, dict[tuple, dict]] = {}
    for run in runs:
        key = tuple(run["meta"]["goarches"])
        for r in run["results"]:
            if r["id"] not in parts:
                order.append(r["id"])
            parts.setdefault(r["id"], {})[key] = r  # a later run of the same GOARCH replaces the row
    rows = []
    for mid in order:
        rs = list(parts[mid].values())
        row = {k: rs[0][k] for k in ("id", "bug", "component", "expected", "kind")}
        if mid in entries:
            row["expected"] = entries[mid]["expected"]
        checks = [c for r in rs for c in r.get("checks", [])]
        errors = [r["error"] for r in rs if r.get("verdict") == "error"]
        breaking = [c for c in checks if c.get("verdict") == "breaks"]
        rt = [c for c in checks if c["name"] == "runtime-tests" and c["status"] == "ran"]
        diff = [c for c in breaking if c["name"] == "differential"]
        first = min(breaking, key=lambda c: c.get("after_build_seconds") or 0.0) if breaking else None
        builds: dict = {}
        for r in rs:
            builds.update(r.get("build_seconds") or {})
        row.update(
            verdict="breaks" if breaking else ("error" if errors else "no divergence found"),
            caught_by=sorted({c["name"] for c in breaking}),
            detected_after_build_s=round(first["after_build_seconds"], 1) if first and first.get("after_build_seconds") is not None else None,
            differential_detected_after_build_s=min(round(c["after_build_seconds"], 1) for c in diff) if diff else None,
            runtime_tests="caught" if any(c["verdict"] == "breaks" for c in rt) else ("missed" if rt else "not run"),
            build_seconds=builds,
            not_run=sorted({n for r in rs for n in r.get("not_run", [])}),
            checks=checks,
            seconds=round(sum(r.get("seconds", 0) for r in rs), 1),
        )
        if errors:
            row["error"] = "; ".join(errors)
        row["as_expected"] = _matches(row, row["verdict"])
        rows.append(row)
    meta = dict(runs[0]["meta"])
    meta["goarches"] = list(dict.fromkeys(g for run in runs for g in run["meta"]["goarches"]))
    return rows, meta


def per_goarch_table(rows: list[dict], goarches: list[str]) -> str:
    """Returns a Markdown table: per mutant and GOARCH, the differential's and the runtime's own tests' verdicts."""

    def cell(r: dict, name: str, goarch: str) -> str:
        cs = [c for c in r.get("checks", []) if c["name"] == name and c["goarch"] == goarch]
        if not cs:
            return "-"
        c = cs[0]
        if c["status"] != "ran":
            return c["status"]
        if c["verdict"] == "breaks":
            t = c.get("after_build_seconds")
            return "breaks" + (f" ({t:.1f} s)" if name == "differential" and t is not None else "")
        return "holds"

    head = " | ".join(f"differential {g} | runtime's tests {g}" for g in goarches)
    out = ["", "## Per GOARCH", "", "Differential: `breaks` with the time to detection after the build, or `holds` "
           "(no divergence in the budget). Runtime's tests: the runtime's own page-allocator tests on the patched "
           "runtime (`breaks`: some failed or crashed).", "",
           f"| id | start-up | {head} |", "|---|---|" + "---|---|" * len(goarches)]
    for r in rows:
        su = ", ".join(sorted({f"{c['goarch']} {c['verdict'] or c['status']}" for c in r.get("checks", []) if c["name"] == "start-up"
                               and c.get("verdict") == "breaks"})) or "starts"
        cells = " | ".join(f"{cell(r, 'differential', g)} | {cell(r, 'runtime-tests', g)}" for g in goarches)
        out.append(f"| {r['id']} | {su} | {cells} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    from palloc.cli.mutants import markdown

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="mutants.json of each run (one per GOARCH)")
    ap.add_argument("--note", default=None, help="the meta note recorded in palloc-results.json")
    ap.add_argument("--engine", default="lockstep")
    ap.add_argument("--dir", type=Path, default=HERE, help="where to write (default: goref/mutants)")
    args = ap.parse_args(argv)
    runs = [json.loads(p.read_text()) for p in args.runs]
    rows, meta = merge_rows(runs)
    meta["engine"] = args.engine
    if args.note:
        meta["note"] = args.note
    doc = {"meta": meta, "results": rows}
    write_atomic(args.dir / "palloc-results.json", json.dumps(doc, indent=1, default=str) + "\n")
    note = f"\nHow it was measured: {meta['note']}\n" if meta.get("note") else ""
    write_atomic(args.dir / "REPORT.md", markdown(rows, meta) + note + per_goarch_table(rows, meta["goarches"]))
    print(f"wrote {args.dir / 'palloc-results.json'} and {args.dir / 'REPORT.md'} ({len(rows)} patches)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
