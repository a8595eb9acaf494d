"""`palloc trace record|replay|workloads`: a real Go program's page-allocator calls, recorded and replayed.

record builds PROGRAM on the recording overlay of the toolchain's real runtime and runs it; replay
replays a trace in the model (the real heap's mode) and compares every result and snapshot;
workloads records the standard set. Exit codes: 0 agreed (or recorded), 1 a divergence, 2 anything
else, in one line. The format is goref/TRACE.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from palloc.spec.errors import PallocError

# HELP, DESCRIPTION and arguments(p) as cli/main.py wants of every verb: the subparsers of a
# verb with ACTIONs are alike by design (argparse declarations, one per option).
HELP = "record a real Go program's page-allocator calls, and replay them in the model"
DESCRIPTION = (
    "record: build PROGRAM on an overlay of the real runtime that logs every call on mheap_.pages, run it, "
    "write a compressed trace. replay: replay a trace in the model in the real heap's mode, comparing every "
    "address, scavenged and released byte count and state snapshot. workloads: record the standard set."
)


def arguments(p) -> None:
    vs = p.add_subparsers(dest="trace_verb", metavar="ACTION")
    q = vs.add_parser("record", help="build PROGRAM with the recording overlay, run it, write its trace",
                      description="palloc trace record [--goarch G] -o FILE -- PROGRAM ARGS...: PROGRAM is a "
                      "package path (cmd/gofmt) or a main package's folder.")
    q.add_argument("-o", "--output", required=True, help="the trace file to write")
    q.add_argument("--goarch", help="build and run for this Linux GOARCH (natively, or under qemu-user)")
    q.add_argument("--goroot", help="GOROOT of the Go toolchain (default: as `palloc fuzz`)")
    q.add_argument("--state-every", type=int, default=None,
                   help="snapshot the whole allocator state every N locked operations (default 5000)")
    q.add_argument("--twin", help=argparse.SUPPRESS)
    q.add_argument("program", help="package path or folder of a main package")
    q.add_argument("args", nargs=argparse.REMAINDER, help="the program's arguments")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.set_defaults(run=run_record)
    q = vs.add_parser("replay", help="replay a trace in the model and compare everything")
    q.add_argument("file", help="a trace written by palloc trace record")
    q.add_argument("--failures", default="palloc-failures", help="folder for the shrunk case (default palloc-failures)")
    q.add_argument("--no-lockstep", action="store_true",
                   help="on a divergence, write only the trace's prefix, not the test-mode lockstep case (which "
                   "runs the Go helper)")
    q.add_argument("--readable", action="store_true",
                   help="replay on the readable mirror (model/mpagealloc.py PageAlloc) instead of the fast layer")
    q.add_argument("--broken", help=argparse.SUPPRESS)  # a broken model variant, for tests
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.set_defaults(run=run_replay)
    q = vs.add_parser("workloads", help="record (and replay) the standard workloads into a folder")
    q.add_argument("-o", "--output", required=True, help="folder for the traces")
    q.add_argument("--goarch", help="GOARCH (default: the toolchain's)")
    q.add_argument("--goroot", help="GOROOT of the Go toolchain")
    q.add_argument("--only", action="append", help="record only these workloads (repeatable)")
    q.add_argument("--no-replay", action="store_true", help="record only")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.set_defaults(run=run_workloads)
    p.set_defaults(run=lambda args: (p.print_help(), 2)[1])


def _toolchain(args):
    from palloc.goref.toolchain import find_toolchain

    return find_toolchain(args.goroot)


def run_record(args) -> int:
    from palloc.goref import trace_record

    prog_args = list(args.args)
    if prog_args[:1] == ["--"]:
        prog_args = prog_args[1:]
    tc = _toolchain(args)
    meta = trace_record.record(tc, args.program, prog_args, args.output, goarch=args.goarch,
                               state_every=args.state_every or trace_record.STATE_EVERY, twin=args.twin)
    if args.json:
        print(json.dumps(meta, indent=1))
    else:
        print(f"{args.output}: {meta['records']} records from {meta['program']} "
              f"(GOARCH={meta['goarch']}, exit {meta['exit_code']}, {meta['run_seconds']} s)", file=sys.stderr)
    return 0


def _broken_factory(name: str | None):
    if not name:
        return None
    from palloc.goref.trace_replay import broken_model

    return broken_model(name)


def replay_file(path: str, factory=None):
    """Reads and replays a trace: (trace, ReplayResult)."""
    from palloc.goref import trace, trace_replay

    t = trace.read_trace(path)
    return t, trace_replay.replay(t, factory=factory)


def run_replay(args) -> int:
    from palloc.goref import trace, trace_replay

    factory = _broken_factory(args.broken)
    if factory is None and args.readable:
        from palloc.model.mpagealloc import PageAlloc as factory
    t, res = replay_file(args.file, factory)
    out = {"file": args.file, "goarch": t.goarch, "records": res.records, "operations": res.operations,
           "snapshots": res.snapshots, "addresses": res.addresses, "seconds": round(res.seconds, 3),
           "ops_per_second": round(trace_replay.rate(res.operations, res.seconds)),
           "program_ops_per_second": round(trace_replay.rate(res.operations, t.meta.get("run_seconds", 0))),
           "divergence": None}
    if res.divergence is not None:
        d = res.divergence
        folder = Path(args.failures)
        folder.mkdir(parents=True, exist_ok=True)
        case = folder / (Path(args.file).name.split(".")[0] + f"-prefix-{d.index + 1}.trace")
        raw = trace.encode_records(t, trace_replay.shrunk_prefix(t, d))
        trace.write_trace(case, dict(t.meta, shrunk_from=args.file), raw)
        lock = ({"written": None, "line": "no test-mode lockstep case (--no-lockstep)"} if args.no_lockstep
                else _lockstep_case(t, d, args.broken, folder))
        out["divergence"] = {"record": d.index, "lines": d.lines, "case": str(case), "lockstep": lock}
        if args.json:
            print(json.dumps(out, indent=1))
        else:
            print(d.text())
            print(f"shrunk case (the trace's first {d.index + 1} records): {case}; "
                  f"palloc trace replay {case} reproduces it")
            print(lock["line"])
        return 1
    if res.operations == 0:
        raise PallocError(f"{args.file}: the trace has no operations; nothing was checked")
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        print(f"{args.file}: {res.operations} operations, {res.addresses} addresses and {res.snapshots} "
              f"state snapshots equal ({t.platform}, {out['ops_per_second']} ops/s in the model, the program "
              f"{out['program_ops_per_second']} ops/s)")
    return 0


def _lockstep_case(t, d, variant: str | None, folder: Path) -> dict:
    """Writes the diverging prefix as a test-mode lockstep case where the helper reproduces it."""
    from palloc.goref import trace_replay
    from palloc.goref.broken import MODEL_VARIANTS
    from palloc.goref.fuzz import Case, session
    from palloc.goref.report import write_failure

    ops, why = trace_replay.lockstep_ops(t, d.index)
    if ops is None:
        return {"written": None, "line": f"no test-mode lockstep case: {why}"}
    if variant is not None and variant not in MODEL_VARIANTS:
        return {"written": None, "line": f"no test-mode lockstep case: the broken model {variant} is replay's own"}
    try:
        runner = session(t.goarch, variant=variant)
    except PallocError as e:
        return {"written": None, "line": f"no test-mode lockstep case: {e}"}
    case = Case(goarch=t.goarch, go_version=runner.go_version, init=None, ops=ops, model_variant=variant,
                host=dict(runner.host))
    div = runner.run_case(case)
    if div is None:
        return {"written": None, "line": f"the prefix as {len(ops)} test-mode operations does not diverge in "
                                         "lockstep with the helper: the divergence needs the real heap's calls"}
    case.divergence = div
    paths = write_failure(case, folder)
    return {"written": str(paths.get("json")), "line": f"test-mode lockstep case ({len(ops)} operations, "
            f"{div.headline()}): palloc replay {paths.get('json')}"}


def run_workloads(args) -> int:
    import tempfile

    from palloc.goref import trace_record, trace_replay

    tc = _toolchain(args)
    goarch = args.goarch or tc.goarch
    folder = Path(args.output)
    folder.mkdir(parents=True, exist_ok=True)
    rows, worst = [], 0
    with tempfile.TemporaryDirectory(prefix="palloc-workloads-") as tmp:
        wl = trace_record.workloads(tc, goarch, Path(tmp))
        for name in args.only or list(wl):
            if name not in wl:
                raise PallocError(f"no workload {name!r}; choose from {', '.join(wl)}")
            prog, pargs, env = wl[name]
            path = folder / f"{name}-{goarch}.trace"
            meta = trace_record.record(tc, prog, pargs, path, goarch=goarch, env=env, cwd=tmp)
            row = {"workload": name, "goarch": goarch, "file": str(path), "bytes": path.stat().st_size,
                   "records": meta["records"], "run_seconds": meta["run_seconds"], "exit_code": meta["exit_code"]}
            if not args.no_replay:
                t, res = replay_file(str(path))
                row.update(operations=res.operations, addresses=res.addresses, snapshots=res.snapshots,
                           replay_seconds=round(res.seconds, 2),
                           model_ops_per_second=round(trace_replay.rate(res.operations, res.seconds)),
                           program_ops_per_second=round(trace_replay.rate(res.operations, meta["run_seconds"])),
                           agree=res.divergence is None)
                if res.divergence is not None:
                    row["divergence"] = res.divergence.headline()
                    worst = 1
            rows.append(row)
            if not args.json:
                print(json.dumps(row), flush=True)
    if args.json:
        print(json.dumps(rows, indent=1))
    return worst
