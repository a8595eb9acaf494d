"""`palloc workload stats|generate`: a request stream replayed on the model and the real runtime.

stats replays each stream (goref/workload_replay.py: a stream file, or a trace `palloc trace
record` wrote) on the model and on the toolchain's runtime, natively in one go, and prints what
it did: allocs, growth, fragmentation at the end, bytes scavenged and released, the search's
work; with --svg-dir, the heap's occupancy over the stream as an SVG heat map. Exit 0: model and
runtime agree on every answer and count; 1: they differ (the first difference is named); 2:
anything else, in one line. corpus does it for every benign and policy patch of the mutant corpus
(goref/mutants/REPORT.md's figures). generate writes model/workload.py's seeded trace as a stream file.
`palloc verify-change PATCH --workload FILE` does the same with a patched runtime beside them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from palloc.cli._args import positive_int
from palloc.spec.errors import PallocError

# HELP, DESCRIPTION and arguments(p) as cli/main.py wants of every verb: the subparsers of a
# verb with ACTIONs are alike by design (argparse declarations, one per option).
HELP = "replay a request stream on the model and the real runtime: growth, fragmentation, scavenging, search cost"
DESCRIPTION = (
    "stats: replay each request stream (a stream file, or a trace from `palloc trace record`) on the model and on "
    "the real runtime of the toolchain, and print allocs, heap growth, fragmentation, bytes scavenged and released "
    "and the search's work (summary entries and bitmap words examined), model and runtime side by side; "
    "--svg-dir writes the heap's occupancy over the stream as a heat map. Exit 0 they agree, 1 they differ, 2 "
    "error. generate: write the standard seeded workload as a stream file."
)


def arguments(p) -> None:
    vs = p.add_subparsers(dest="workload_verb", metavar="ACTION")
    q = vs.add_parser("stats", help="replay streams on the model and the runtime, print what they did",
                      description="Replay each FILE on the model and the toolchain's runtime; exit 0 if they "
                      "agree on every address, scavenged and released byte count and search count, 1 if not.")
    q.add_argument("files", nargs="+", metavar="FILE", help="a request stream (palloc-stream 1) or a trace file")
    q.add_argument("--goarch", default=None, help="GOARCH of the runtime (default: the toolchain's)")
    q.add_argument("--goroot", help="GOROOT of the Go toolchain (default: as `palloc fuzz`)")
    q.add_argument("--svg-dir", type=Path, default=None, help="write each stream's occupancy heat map here")
    q.add_argument("--snapshots", type=positive_int, default=200, help="heat-map columns (default %(default)s)")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.set_defaults(run=run_stats)
    q = vs.add_parser("corpus", help="replay streams on every benign and policy patch of the mutant corpus",
                      description="For each patch of goref/mutants/manifest.toml of the given kinds, replay each FILE "
                      "on the unpatched and the patched runtime and print what it changes (the figures of "
                      "goref/mutants/REPORT.md). Exit 0 when no patch breaks, 1 if one does.")
    q.add_argument("files", nargs="+", metavar="FILE", help="a request stream or a trace file")
    q.add_argument("--kind", action="append", choices=("benign", "policy", "equivalent"),
                   help="corpus kinds to run (repeatable; default benign and policy)")
    q.add_argument("--only", action="append", metavar="ID", help="only these corpus ids (repeatable)")
    q.add_argument("--goarch", default=None, help="GOARCH of the runtime (default: the toolchain's)")
    q.add_argument("--goroot", help="GOROOT of the Go toolchain (default: as `palloc fuzz`)")
    q.add_argument("--svg-dir", type=Path, default=None, help="write each patch's before/after heat map here")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.set_defaults(run=run_corpus)
    q = vs.add_parser("generate", help="write model/workload.py's seeded trace as a stream file",
                      description="Write the standard workload (palloc bench's) as a request stream.")
    q.add_argument("-o", "--output", type=Path, required=True, help="the stream file to write")
    q.add_argument("--seed", type=int, default=1, help="workload seed (default %(default)s)")
    q.add_argument("--ops", type=positive_int, default=20_000, help="operations (default %(default)s)")
    q.add_argument("--gen-every", type=int, default=0, metavar="K",
                   help="end a GC cycle (gen) every K operations (default: never)")
    q.add_argument("--scavenge", type=int, default=0, metavar="NBYTES",
                   help="with --gen-every, scavenge NBYTES at each cycle's end")
    q.add_argument("--cache", action="store_true",
                   help="allocs of fewer than 16 pages through the P's page cache (cache-alloc), as mheap.allocSpan's")
    q.set_defaults(run=run_generate)
    p.set_defaults(run=lambda args: (p.print_help(), 2)[1])


def run_generate(args) -> int:
    from palloc.goref.files import write_atomic
    from palloc.goref.workload_replay import from_workload

    if args.gen_every < 0 or args.scavenge < 0 or (args.scavenge and not args.gen_every):
        raise PallocError("--gen-every must be at least 0, and --scavenge needs --gen-every")
    s = from_workload(args.seed, args.ops, args.gen_every, args.scavenge, args.cache)
    try:
        write_atomic(args.output, s.text())
    except OSError as e:
        raise PallocError(f"cannot write {args.output}: {e.strerror or e}") from None
    print(f"palloc workload: wrote {args.output}: {len(s.ops):,} operations, {s.allocs:,} allocs")
    return 0


def run_stats(args) -> int:
    from palloc.goref.toolchain import find_toolchain
    from palloc.goref.workload_replay import format_metrics, read_stream, replay_patch

    streams = [read_stream(f) for f in args.files]  # every file checked before anything is built
    tc = find_toolchain(args.goroot)
    goarch = args.goarch or tc.goarch
    from palloc.goref.targets import require_runnable

    require_runnable([goarch])
    say = None if args.json else (lambda s: print(f"palloc workload: {s}", file=sys.stderr, flush=True))
    reps = [replay_patch(tc, goarch, s, None, args.snapshots, args.svg_dir, name="runtime", progress=say)
            for s in streams]
    if args.json:
        print(json.dumps(reps, indent=1))
    else:
        for r in reps:
            print(f"{r['stream']} ({r.get('operations', 0):,} operations, {goarch}): {r['detail']}")
            if "metrics" in r:
                names = list(r["metrics"])
                print("\n".join(format_metrics(names, [r["metrics"][n] for n in names])))
            if r.get("svg"):
                print(f"  occupancy: {r['svg']}")
    return 0 if all(r["verdict"] == "holds" for r in reps) else 1


def run_corpus(args) -> int:
    from palloc.goref import patch as P
    from palloc.goref.baseline import MUTANTS_DIR, corpus
    from palloc.goref.build import cache_dir
    from palloc.goref.targets import require_runnable
    from palloc.goref.toolchain import find_toolchain
    from palloc.goref.workload_replay import read_stream, replay_patch

    streams = [read_stream(f) for f in args.files]
    kinds = set(args.kind or ("benign", "policy"))
    entries = [e for e in corpus(args.only) if e.get("kind") in kinds]
    if not entries:
        raise PallocError(f"no corpus patch of kind {', '.join(sorted(kinds))}; see goref/mutants/manifest.toml")
    tc = find_toolchain(args.goroot)
    goarch = args.goarch or tc.goarch
    require_runnable([goarch])
    def say(s: str) -> None:  # progress on stderr, also with --json: a corpus run takes a build per patch
        print(f"palloc workload: {s}", file=sys.stderr, flush=True)

    rows = []
    overlays = {e["id"]: dict(P.apply_patch(MUTANTS_DIR / e["patch"], tc.goroot, cache_dir() / "patches").files)
                for e in entries}
    for s in streams:  # stream by stream: its unpatched and model runs are replayed once
        for e in entries:
            rep = replay_patch(tc, goarch, s, overlays[e["id"]], svg_dir=args.svg_dir, name=e["id"], progress=say)
            rows.append({"id": e["id"], "kind": e["kind"], "stream": s.name, "verdict": rep["verdict"],
                         "changes": rep.get("changes_behaviour"), "summary": rep.get("summary") or rep["detail"],
                         "metrics": rep.get("metrics"), "svg": rep.get("svg")})
            say(f"{e['id']} on {s.name}: {rows[-1]['summary']}")
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        for r in rows:
            print(f"{r['id']} ({r['kind']}) on {Path(r['stream']).name}: "
                  f"{'BREAKS: ' if r['verdict'] == 'breaks' else ''}{r['summary']}")
    return 1 if any(r["verdict"] == "breaks" for r in rows) else 0 if all(r["verdict"] for r in rows) else 2
