"""The reports of `palloc mutants`: a run's Markdown table, its rows merged from cells, and runs merged.

A run's cells (mutant x GOARCH x seed) become one row per mutant (merge_cells: the strongest
cell's verdict, as verify-change over several GOARCHes says: goref/verdict.py). A full corpus run
on one GOARCH takes about half an hour on a shared 2-core machine, so GOARCHes are often measured
by separate runs; `palloc mutants merge RUN.json ...` joins their mutants.json files the same way
(merge_runs: a later run's row for the same mutant and GOARCH replaces an earlier one, for re-runs)
and writes goref/mutants/palloc-results.json and REPORT.md (markdown() plus per_goarch_table()).

Mirrors no Go file.
"""

from __future__ import annotations

import json
from pathlib import Path

from palloc.goref.files import write_atomic
from palloc.goref.verdict import Check, strongest, verdict_of

HERE = Path(__file__).resolve().parent
# REPORT.md's line below which `palloc mutants merge` keeps what is there.
KEPT_BELOW = "<!-- palloc mutants merge writes the report above this line and keeps what follows -->\n"


def expected_for(entry: dict, goarches: list[str]) -> str:
    """Returns the manifest's expectation for a run over goarches: `expected_on` where a GOARCH
    differs (arenaBaseOffset is 0 on 386, so its sign errors are equivalent there); over several
    GOARCHes the strongest, as verify-change breaks when any GOARCH breaks."""
    per = entry.get("expected_on") or {}
    exps = [per.get(g, entry["expected"]) for g in goarches] or [entry["expected"]]
    return next((e for e in ("breaks", "changes behaviour") if e in exps), exps[0])


def matches(entry: dict, verdict: str, goarches: list[str] | None = None) -> bool:
    """Returns whether a measured verdict agrees with the manifest's expectation on goarches
    (or, without them, with its `expected`)."""
    exp = expected_for(entry, goarches) if goarches else entry["expected"]
    if exp == "breaks":
        return verdict == "breaks"
    if exp in ("equivalent", "no divergence found"):
        return verdict == "no divergence found"
    if exp == "changes behaviour":  # a valid policy change: every obligation of the spec holds
        return verdict == "changes behaviour"
    return False


def _num(x) -> str:
    return "-" if x is None else str(x)


def _behaviour_words(b: dict) -> str:
    # state: steps whose results agree but whose state differs (a patch may change only that)
    released = b.get("released_runtime", 0) - b.get("released_model", 0)
    return (f"{b.get('results_differ_total', 0)}/{b.get('compared', 0)} results, state {b.get('state_differs', 0)}x, "
            f"searchAddr {b.get('search_addr_differs', 0)}x, windows {b.get('cache_windows_differ', 0)}x"
            + (f", released {released:+,} B" if released else ""))


def behaviour_short(behaviour: list[dict]) -> str:
    """Returns what differs from the model, per GOARCH, in a few words: results differing of the
    steps compared, how often the state alone, searchAddr and the page-cache window differ, and
    the bytes the runtime released beyond the model's."""
    return "; ".join(f"{b.get('goarch', '?')}: {_behaviour_words(b)}" for b in behaviour)


def behaviour_of(checks) -> list[dict]:
    """Returns what differs from the model, per GOARCH, as the checks that found a change the spec
    allows (verify-change's `changes`) measured it."""
    return [dict(ev["behaviour"], goarch=c["goarch"]) for c in checks
            if c.get("verdict") == "changes" and (ev := c.get("evidence") or {}).get("behaviour")]


def runtime_tests_of(checks) -> str:
    """Returns the runtime's own tests' verdict on a patch from its checks: caught (some failed or
    crashed), pins policy (they fail on a patch the spec accepts), missed, or not run."""
    rt = [c["verdict"] for c in checks if c["name"] == "runtime-tests" and c["status"] == "ran"]
    return "caught" if "breaks" in rt else "pins policy" if "pins policy" in rt else "missed" if rt else "not run"


def _decided(r: dict) -> str:
    d = r.get("decided_by") or "-"
    return d + (f" ({behaviour_short(r['behaviour'])})" if r.get("behaviour") and r.get("verdict") == "changes behaviour" else "")


def markdown(rows: list[dict], meta: dict, cells: list[dict] | None = None) -> str:
    out = [
        "# palloc mutants",
        "",
        f"Toolchain {meta['toolchain']}, GOARCH {', '.join(meta['goarches'])}, differential budget {meta['seconds']} s "
        f"per mutant and GOARCH, seed {', '.join(map(str, meta.get('seeds', [meta.get('seed', 0)])))}. {len(rows)} patches.",
        "",
        "| id | bug | component | expected | verdict | decided by | caught by | first detection after build (s) | differential detection after build (s) | runtime's own tests | as expected |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['id']} | {r['bug']} | {r['component']} | {r['expected']} | {r['verdict']} | {_decided(r)} | "
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


def _join_decided(parts) -> str | None:
    """Returns what decided several cells or runs of one verdict: their obligations or checks, once each."""
    names = {x.strip() for p in parts for x in (p.get("decided_by") or "").split(",")} - {"", "-"}
    return ", ".join(sorted(names)) or None


def _builds(cells: list[dict]) -> dict[str, float]:
    """Returns the patched helper's build time per GOARCH of a mutant's cells (the longest of its seeds)."""
    out: dict[str, float] = {}
    for c in cells:
        for g, t in (c.get("build_seconds") or {}).items():
            out[g] = max(out.get(g, 0.0), t)
    return out


def _join(verdicts: list[str]) -> str:
    """Returns the verdict of a mutant's cells or runs: as verify-change joins GOARCHes (strongest),
    except that one that stopped with an error (the patch did not build there) outranks all but
    breaks, and none at all is an error."""
    return "breaks" if "breaks" in verdicts else "error" if "error" in verdicts or not verdicts else strongest(verdicts)


def merge_cells(entry: dict, cells: list[dict]) -> dict:
    """Returns a mutant's row from its cells (one per GOARCH and seed): the strongest cell's verdict
    (as verify-change over several GOARCHes), caught_by their union, the earliest detection."""
    row = {k: entry[k] for k in ("id", "bug", "component", "kind")}
    row["expected"] = expected_for(entry, list(dict.fromkeys(c["goarch"] for c in cells if c.get("goarch"))))
    verdict = _join([c.get("verdict") or "error" for c in cells])
    det = [c["detected_after_build_s"] for c in cells if c.get("detected_after_build_s") is not None]
    diff = [c["differential_detected_after_build_s"] for c in cells if c.get("differential_detected_after_build_s") is not None]
    rts = [c.get("runtime_tests") for c in cells]
    row.update(
        verdict=verdict,
        caught_by=sorted({x for c in cells for x in c.get("caught_by") or []}),
        decided_by=_join_decided(c for c in cells if c.get("verdict") == verdict),
        detected_after_build_s=min(det) if det else None,
        differential_detected_after_build_s=min(diff) if diff else None,
        runtime_tests=next((v for v in ("caught", "pins policy", "missed") if v in rts), "not run"),
        build_seconds=_builds(cells),
        not_run=sorted({n for c in cells for n in c.get("not_run") or []}),
        behaviour=behaviour_of(ch for c in cells for ch in c.get("checks") or []),
        seconds=round(sum(c.get("seconds") or 0 for c in cells), 1),
    )
    errors = [c["why"] for c in cells if c.get("verdict") == "error" and c.get("why")]
    if errors:
        row["error"] = errors[0]
    row["as_expected"] = matches(row, verdict)
    return row


# What palloc-results.json keeps of a check's evidence: what decided it and what it found, not its
# replay files, coverage or the Go test it wrote (the run's own mutants.json has those).
EVIDENCE_KEPT = ("obligation", "behaviour", "first_difference", "divergence", "failed", "crash", "exit_code",
                 "tests", "error", "mismatches", "ops", "replay")


def _slim(check: dict) -> dict:
    ev = check.get("evidence") or {}
    return dict(check, evidence={k: ev[k] for k in EVIDENCE_KEPT if k in ev})


def merge_runs(runs: list[dict]) -> tuple[list[dict], dict]:
    """Returns (rows, meta) of the runs joined per mutant id, in the first run's order."""
    from palloc.goref.baseline import corpus

    entries = {e["id"]: e for e in corpus(None)}
    order: list[str] = []
    parts: dict[str, dict[tuple, dict]] = {}
    for run in runs:
        key = tuple(run["meta"]["goarches"])
        # `palloc mutants` keeps the checks and builds in its cells (a cell per GOARCH and seed),
        # not in the rows.
        in_cells: dict[str, list] = {}
        for c in run.get("cells") or []:
            in_cells.setdefault(c["id"], []).append(c)
        for r in run["results"]:
            if "checks" not in r and r["id"] in in_cells:
                r = dict(r, checks=[x for c in in_cells[r["id"]] for x in c.get("checks") or []],
                         build_seconds=_builds(in_cells[r["id"]]))
            if r["id"] not in parts:
                order.append(r["id"])
            parts.setdefault(r["id"], {})[key] = r  # a later run of the same GOARCH replaces the row
    rows = []
    for mid in order:
        rs = list(parts[mid].values())
        row = {k: rs[0][k] for k in ("id", "bug", "component", "expected", "kind")}
        if mid in entries:
            row["expected"] = expected_for(entries[mid], list(dict.fromkeys(g for key in parts[mid] for g in key)))
        checks = [_slim(c) for r in rs for c in r.get("checks", [])]
        errors = [r["error"] for r in rs if r.get("verdict") == "error"]
        breaking = [c for c in checks if c.get("verdict") == "breaks"]
        diff = [c for c in breaking if c["name"] == "differential"]
        first = min(breaking, key=lambda c: c.get("after_build_seconds") or 0.0) if breaking else None
        builds: dict = {}
        for r in rs:
            builds.update(r.get("build_seconds") or {})
        # verify-change's verdict over every GOARCH's checks, and the error of a GOARCH that stopped
        verdict = _join([verdict_of([Check.from_json(c) for c in checks])] + (["error"] if errors else []))
        row.update(
            verdict=verdict,
            caught_by=sorted({c["name"] for c in breaking}),
            decided_by=_join_decided(r for r in rs if r.get("verdict") == verdict),
            detected_after_build_s=round(first["after_build_seconds"], 1) if first and first.get("after_build_seconds") is not None else None,
            differential_detected_after_build_s=min(round(c["after_build_seconds"], 1) for c in diff) if diff else None,
            runtime_tests=runtime_tests_of(checks),
            build_seconds=builds,
            not_run=sorted({n for r in rs for n in r.get("not_run", [])}),
            checks=checks,
            behaviour=behaviour_of(checks),
            seconds=round(sum(r.get("seconds", 0) for r in rs), 1),
        )
        if errors:
            row["error"] = "; ".join(errors)
        row["as_expected"] = matches(row, verdict)
        rows.append(row)
    meta = dict(runs[0]["meta"])
    meta["goarches"] = list(dict.fromkeys(g for run in runs for g in run["meta"]["goarches"]))
    return rows, meta


def goarch_verdict(checks: list[dict], goarch: str) -> str:
    """Returns one GOARCH's verdict on a patch (verdict_of, as verify-change concludes it there) and
    what decided it: the spec obligation the differential found broken (with the time to detection after the
    build), or the other checks that broke it; what differs, for `changes behaviour`."""
    cs = [c for c in checks if c["goarch"] == goarch]
    if not cs:
        return "not run"
    verdict = verdict_of([Check.from_json(c) for c in cs])
    breaking = [c for c in cs if c.get("verdict") == "breaks"]
    diff = next((c for c in breaking if c["name"] == "differential"), None)
    if diff is not None:
        ob, t = (diff.get("evidence") or {}).get("obligation"), diff.get("after_build_seconds")
        others = sorted(c["name"] for c in breaking if c is not diff)
        return (f"breaks: {ob or 'differential'}" + (f" ({t:.1f} s)" if t is not None else "")
                + (f"; also {', '.join(others)}" if others else ""))
    if breaking:
        return "breaks: " + ", ".join(sorted(c["name"] for c in breaking))
    if verdict == "changes behaviour":
        # what differs from the model (the differential says in numbers; a policy function that
        # translation validation found changed says only that)
        changed = next(c for c in sorted(cs, key=lambda c: c["name"] != "differential") if c.get("verdict") == "changes")
        b = (changed.get("evidence") or {}).get("behaviour")
        return "changes behaviour" + (f" ({_behaviour_words(b)})" if b else "")
    return verdict


def per_goarch_table(rows: list[dict], goarches: list[str]) -> str:
    """Returns a Markdown table: per patch and GOARCH, the verdict and what decided it, and the
    runtime's own tests' verdict."""

    def tests(r: dict, goarch: str) -> str:
        cs = [c for c in r.get("checks", []) if c["name"] == "runtime-tests" and c["goarch"] == goarch]
        if not cs:
            return "-"
        c = cs[0]
        return c["status"] if c["status"] != "ran" else c["verdict"] if c["verdict"] in ("breaks", "pins policy") else "holds"

    head = " | ".join(f"{g}: verdict (decided by) | runtime's tests {g}" for g in goarches)
    out = ["", "## Per GOARCH", "", "Verdict: `breaks` with the spec obligation the patched runtime broke on its own "
           "state (spec/SPEC.md section 8) and the differential's time to detection after the build, or the check "
           "that broke it (start-up: the patched runtime does not start; translation: a changed function refuted); "
           "`changes behaviour` when it differs from the model only where the spec leaves it free (results that differ "
           "of the steps compared, how often the state alone, searchAddr and the page-cache window differ, and the bytes "
           "released beyond the model's); `no divergence found`. "
           "Runtime's tests: the runtime's own page-allocator tests on the patched runtime (`breaks`: some failed or "
           "crashed; `pins policy`: they fail on a patch the spec accepts).", "",
           f"| id | expected | {head} |", "|---|---|" + "---|---|" * len(goarches)]
    for r in rows:
        cells = " | ".join(f"{goarch_verdict(r.get('checks', []), g)} | {tests(r, g)}" for g in goarches)
        out.append(f"| {r['id']} | {r['expected']} | {cells} |")
    return "\n".join(out) + "\n"


def write_merged(runs: list[dict], note: str | None = None, engine: str = "lockstep", folder: Path = HERE) -> tuple[Path, Path, int]:
    """Merges runs (each a mutants.json) and writes palloc-results.json and REPORT.md into folder;
    returns their paths and the number of patches."""
    rows, meta = merge_runs(runs)
    meta["engine"] = engine
    if note:
        meta["note"] = note
    how = f"\nHow it was measured: {meta['note']}\n" if meta.get("note") else ""
    # The sections written by hand below KEPT_BELOW (the spec's verdicts, translation validation,
    # every GOARCH) stay as they are.
    old = folder / "REPORT.md"
    kept = old.read_text().partition(KEPT_BELOW)[2] if old.is_file() else ""
    # Both texts first: a run that cannot be reported leaves both files as they were.
    texts = {"palloc-results.json": json.dumps({"meta": meta, "results": rows}, indent=1, default=str) + "\n",
             "REPORT.md": markdown(rows, meta) + how + per_goarch_table(rows, meta["goarches"]) + "\n" + KEPT_BELOW + kept}
    for name, text in texts.items():
        write_atomic(folder / name, text)
    return folder / "palloc-results.json", folder / "REPORT.md", len(rows)
