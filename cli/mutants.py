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

from palloc.cli._args import goarch_option, goroot, json_option, matrix_options
from palloc.goref.corpus import default_dir as corpus_dir
from palloc.goref.files import write_atomic
from palloc.goref.mutants.report import markdown, merge_cells, runtime_tests_of
from palloc.spec.errors import PallocError


HELP = "run verify-change over the mutant corpus and report what catches each mutant"
DESCRIPTION = (
    "Run `palloc verify-change` on every patch of the mutant corpus (goref/mutants/) and write a "
    "Markdown and JSON report: per patch the verdict, what decided it (the spec obligation the patched runtime "
    "broke, or what a valid policy change changes), the checks that caught it, time to detection after the "
    "build, and whether the runtime's own page-allocator tests caught it. Exit 1 if a verdict differs from the "
    "manifest's expectation on the GOARCHes run (a benign patch flagged, a `breaks` mutant missed, a policy "
    "patch judged `breaks`)."
)


def arguments(p) -> None:
    p.add_argument("--only", nargs="+", metavar="ID", help="only these mutant ids")
    p.add_argument("--kind", choices=["mutant", "benign", "policy"],
                   help="only mutants, only benign refactors, or only valid policy changes")
    p.add_argument("--seconds", type=float, default=30.0, help="differential budget per mutant and GOARCH (default %(default)s)")
    goarch_option(p, "amd64")
    matrix_options(p, "mutant, GOARCH")
    p.add_argument("--out", type=Path, default=Path("palloc-mutants"), help="report directory (default %(default)s)")
    p.add_argument("--no-fuzz", action="store_true", help="skip the differential campaign (baseline and start-up only)")
    json_option(p, "print the JSON report to stdout")
    # The corpus's upkeep, for a source checkout: each writes into goref/mutants/.
    acts = p.add_subparsers(dest="action", metavar="ACTION", title="the corpus's upkeep (writes goref/mutants/)")
    q = acts.add_parser("generate", help="write every mutant's patch and manifest.toml from goref/mutants/generate.py",
                        description="Write the corpus's patches against a pristine Go runtime and manifest.toml, with "
                        "the measured columns of baseline.json, compile.json, palloc-results.json and tv-results.json.")
    q.add_argument("--goroot", type=goroot, help="a pristine Go 1.27.3 tree (default: as `palloc fuzz`)")
    q.set_defaults(run=run_generate)
    q = acts.add_parser("baseline", help="run the runtime's own page-allocator tests on each mutant (baseline.json)",
                        description="Run the runtime's own page-allocator tests on the runtime with each patch (default: "
                        "every mutant of the corpus, into goref/mutants/baseline.json), or only compile package runtime "
                        "with it (--compile-only, into compile.json beside it). Results are kept after every patch.")
    q.add_argument("patches", nargs="*", type=Path, help="patch files (default: the corpus)")
    q.add_argument("--only", nargs="+", metavar="ID", help="only these mutant ids of the corpus")
    q.add_argument("--goarch", default=None, help="GOARCH of the test binary (default: the host's)")
    q.add_argument("--out", type=Path, default=None, help="the JSON results (default: goref/mutants/baseline.json "
                   "for the corpus, none for patch files)")
    q.add_argument("--skip-done", action="store_true", help="skip patches already in the results")
    q.add_argument("--plain", action="store_true", help="a plain runtime test binary instead of the cached helper")
    q.add_argument("--compile-only", action="store_true", help="only compile package runtime with each patch")
    q.set_defaults(run=run_baseline)
    q = acts.add_parser("merge", help="join the mutants.json of separate runs into palloc-results.json and REPORT.md",
                        description="Join the mutants.json reports of separate runs (one per GOARCH, say) per mutant, "
                        "as verify-change joins GOARCHes, and write palloc-results.json and REPORT.md.")
    q.add_argument("runs", nargs="+", type=Path, help="the mutants.json of each run")
    q.add_argument("--note", default=None, help="how it was measured, recorded in palloc-results.json and REPORT.md")
    q.add_argument("--engine", default="lockstep", help="the fuzz engine the runs used (default %(default)s)")
    q.add_argument("--dir", type=Path, default=None, help="where to write (default: goref/mutants)")
    q.set_defaults(run=run_merge)
    q = acts.add_parser("prove", help="translation validation alone on every patch (tv-results.json)",
                        description="Run the translation-validation stage of verify-change (--prove-only) on every "
                        "patch of the corpus and write its verdicts to goref/mutants/tv-results.json, which "
                        "`palloc mutants generate` copies into the manifest.")
    q.add_argument("--only", nargs="+", metavar="ID", help="only these mutant ids")
    q.add_argument("--goarch", default="amd64", help="the platform translated for (default %(default)s)")
    q.add_argument("--no-confirm", action="store_true", help="do not confirm counterexamples in a patched helper")
    q.add_argument("--out", type=Path, default=None, help="the JSON verdicts (default: goref/mutants/tv-results.json)")
    q.set_defaults(run=run_prove)


def _corpus_dir(folder: Path | None = None) -> Path:
    from palloc.goref.baseline import MUTANTS_DIR
    from palloc.goref.files import require_writable_dir

    return require_writable_dir(folder or MUTANTS_DIR, "run it from a source checkout (pip install -e .), or pass a "
                                "folder you can write")


def run_generate(args) -> int:
    from palloc.goref.mutants.generate import generate
    from palloc.goref.toolchain import find_toolchain

    n = generate(find_toolchain(args.goroot).goroot, _corpus_dir())
    print(f"wrote {n} patches and manifest.toml to {_corpus_dir()}", file=sys.stderr)
    return 0


def run_baseline(args) -> int:
    from palloc.goref.baseline import MUTANTS_DIR, corpus, measure

    jobs = [(f.stem, f) for f in args.patches]
    out = args.out
    if not args.patches:
        jobs = [(e["id"], MUTANTS_DIR / e["patch"]) for e in corpus(args.only)]
        out = out or _corpus_dir() / "baseline.json"
    for _, f in jobs:
        if not f.is_file():
            raise PallocError(f"no patch file {f}")
    measure(jobs, out, args.goarch, plain=args.plain, compile_only=args.compile_only, skip_done=args.skip_done,
            say=lambda line: print(line, flush=True))
    return 0


def run_prove(args) -> int:
    from palloc.proofs.tv import run_corpus

    out = args.out or _corpus_dir() / "tv-results.json"
    rows = run_corpus(goarch=args.goarch, ids=args.only, confirm=not args.no_confirm,
                      progress=lambda line: print(line, file=sys.stderr, flush=True))
    write_atomic(out, json.dumps(rows, indent=1) + "\n")
    print(f"wrote {out} ({len(rows)} patches)", file=sys.stderr)
    return 0


def run_merge(args) -> int:
    from palloc.goref.mutants.report import write_merged

    runs = []
    for f in args.runs:
        try:
            runs.append(json.loads(f.read_text()))
        except (OSError, ValueError) as e:
            raise PallocError(f"cannot read {f} as a `palloc mutants` report: {e}") from None
        if not isinstance(runs[-1], dict) or "meta" not in runs[-1] or "results" not in runs[-1]:
            raise PallocError(f"{f} is not a `palloc mutants` report (mutants.json: meta and results)")
    folder = _corpus_dir(args.dir)
    try:
        results, report, n = write_merged(runs, args.note, args.engine, folder)
    except (KeyError, TypeError, AttributeError, ValueError) as e:  # a report of the wrong shape
        raise PallocError(f"the runs are not `palloc mutants` reports (mutants.json): {type(e).__name__} {e}") from None
    print(f"wrote {results} and {report} ({n} patches)", file=sys.stderr)
    return 0


def _decided_by(rep: dict) -> str:
    """What decided a verify-change verdict: the spec obligation a differential case broke, the
    freedom a behaviour change stayed in, or the check that caught it."""
    for c in rep["checks"]:
        ev = c.get("evidence") or {}
        if c["verdict"] == "breaks" and ev.get("obligation"):
            return ev["obligation"]
    if rep["verdict"] == "changes behaviour":
        return "within the spec's freedoms"
    return ", ".join(rep["caught_by"]) or "-"


def mutant_cell(a: dict) -> dict:
    """One mutant on one GOARCH with one seed: `palloc verify-change` of its patch; returns the
    `palloc mutants` row (verdict, checks that caught it, detection time, runtime tests)."""
    from palloc.goref import matrix
    from palloc.goref.baseline import MUTANTS_DIR
    from palloc.goref.build import cache_dir
    from palloc.goref.patch import apply_patch
    from palloc.goref.targets import target
    from palloc.goref.toolchain import find_toolchain
    from palloc.goref.verdict import verify

    t0 = time.monotonic()
    tc = find_toolchain(a.get("goroot"))
    goarch = a["goarch"]
    ov = apply_patch(MUTANTS_DIR / a["patch"], tc.goroot, cache_dir() / "patches")
    # Translation validation does not depend on how the helper runs: natively only (it takes
    # seconds, and its counterexamples are confirmed in a helper).
    prove = a.get("prove", True) and target(goarch).runner == "native"
    # Its cases seed the failure corpus; replaying the corpus first would blur each mutant's own
    # time to detection, so it is not replayed here.
    rep = verify(ov, tc, [goarch], a["seconds"], a["seed"], Path(a["out"]) / "replays", a.get("baseline", True),
                 a.get("fuzz", True), a["id"], go_test=False, jobs=1, prove=prove, corpus=a.get("corpus"),
                 corpus_replay=False)
    first = rep["first_detection"]
    diff = [c for c in rep["checks"] if c["name"] == "differential" and c["verdict"] == "breaks"]
    return dict(
        verdict=rep["verdict"],
        caught_by=rep["caught_by"],
        detected_after_build_s=round(first["after_build_seconds"], 1) if first and first["after_build_seconds"] is not None else None,
        differential_detected_after_build_s=min(round(c["after_build_seconds"], 1) for c in diff) if diff else None,
        runtime_tests=runtime_tests_of(rep["checks"]),
        decided_by=_decided_by(rep),
        build_seconds=rep["build_seconds"],
        not_run=rep["not_run"],
        checks=rep["checks"],
        seconds=round(time.monotonic() - t0, 1),
        worker=matrix.worker_name(),
    )


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
    seeds = args.seeds or [args.seed]
    tc = find_toolchain()
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"toolchain": tc.version, "goarches": goarches, "seconds": args.seconds, "seed": seeds[0], "seeds": seeds,
            "scheduler": args.scheduler or f"local ({args.workers or matrix.default_workers()} workers)"}
    quiet = args.json
    for t in skipped_goarches(args.goarch):
        print(f"palloc mutants: {t.name} skipped: {t.why}", file=sys.stderr)
    cells = [matrix.Cell("mutant", (e["id"], a, s), {
        "id": e["id"], "patch": e["patch"], "goarch": a, "seed": s, "seconds": args.seconds, "out": str(args.out.resolve()),
        "fuzz": not args.no_fuzz, "corpus": str(corpus_dir().resolve())}) for e in entries for a in goarches for s in seeds]
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
                  f"{res.get('decided_by') or ','.join(res.get('caught_by') or []) or '-':28} "
                  f"runtime tests {res.get('runtime_tests', '-'):8} "
                  f"({res.get('seconds', '-')} s)", file=sys.stderr, flush=True)
        write()

    matrix.run(mutant_cell, cells, scheduler=args.scheduler, workers=args.workers, desc="mutants",
               on_result=arrived, progress=None if not quiet else False)
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
