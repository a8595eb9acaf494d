"""`palloc check`: the main job — the proof suite, then a differential campaign on amd64 and 386.

It runs the other verbs in turn, exactly as a user would type them, and exits with the worst
of their exit codes (0 all held, 1 a counterexample or divergence, 2 an error).
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import time

from palloc.cli._args import goarch_option, goroot, json_option, positive_seconds


HELP = "the main job: prove the invariants, then fuzz the model against the real runtime"
DESCRIPTION = (
    "Run `palloc prove` for the platform, then `palloc fuzz` against the installed "
    "toolchain's real runtime on amd64 and on 386. Exit 0 when everything held, 1 when a "
    "counterexample or divergence was found, 2 on an error."
)


# --seconds and --total-seconds as fuzz and verify-change declare them, alike on purpose: the
# shared options come from cli/_args.py, these keep a help that says what this verb's budget bounds.
def arguments(p) -> None:
    p.add_argument("--platform", default=None, help="platform to prove (default linux/amd64)")
    p.add_argument("--seconds", type=float, default=30.0,
                   help="each GOARCH's fuzz campaign budget: the default runs two campaigns of this length (default "
                   "%(default)s)")
    p.add_argument("--total-seconds", type=positive_seconds, default=None, metavar="SECONDS",
                   help="bound the whole run, builds included: each fuzz stage gets what is left (`palloc fuzz "
                   "--total-seconds`), and a stage the budget does not reach, or that it cuts short before anything "
                   "was compared, is listed as not reached, which is not a failure (the proofs, about 10 s, are not cut)")
    p.add_argument("--goroot", type=goroot, default=None, help="GOROOT of the toolchain to fuzz against (default: discovered)")
    goarch_option(p, "amd64 and 386")
    p.add_argument("--no-fuzz", action="store_true", help="only the proofs (no Go toolchain needed)")
    json_option(p, "machine-readable summary of every stage")


def stages(args) -> list[tuple[str, list[str]]]:
    """The verbs the main job runs, as command lines."""
    prove = ["prove"] + (["--platform", args.platform] if args.platform else [])
    out = [("prove", prove)]
    if not args.no_fuzz:
        goroot = ["--goroot", args.goroot] if args.goroot else []
        from palloc.goref.targets import parse_goarches

        for arch in parse_goarches(args.goarch, ["amd64", "386"]):
            out.append((f"fuzz {arch}", ["fuzz", "--seconds", str(args.seconds), "--goarch", arch] + goroot))
    return out


def run(args) -> int:
    from palloc.cli.main import main

    results = []
    deadline = time.monotonic() + args.total_seconds if args.total_seconds else None
    for name, argv in stages(args):
        t0 = time.monotonic()
        if deadline is not None:
            left = deadline - t0
            if left <= 0:
                results.append({"stage": name, "exit": None, "seconds": 0.0, "detail": "not reached: the "
                                "--total-seconds budget ran out", "not_reached": True})
                continue
            if argv[0] == "fuzz":
                argv = argv + ["--total-seconds", f"{left:.1f}"]
        if args.json:
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                code = main(argv + ["--json"])
            try:
                detail = json.loads(buf.getvalue())
            except ValueError:
                detail = buf.getvalue()
        else:
            print(f"== palloc {' '.join(argv)}", flush=True)
            code, detail = main(argv), None
        r = {"stage": name, "exit": code, "seconds": round(time.monotonic() - t0, 1), "detail": detail}
        if code == 2 and deadline is not None and time.monotonic() >= deadline:
            r.update(exit=None, not_reached=True)  # the budget, not the stage, ended it
        results.append(r)
    # A counterexample found by any stage is the answer, whatever else went wrong (exit 1 means
    # exactly that); otherwise an error (2) outranks a pass, and a pass needs a stage that ran.
    ran = [r["exit"] for r in results if r["exit"] is not None]
    worst = 1 if 1 in ran else max(ran) if ran else 2
    if args.json:
        print(json.dumps({"exit": worst, "stages": results}, indent=1))
    else:
        print("== summary")
        for r in results:
            verdict = "not reached" if r.get("not_reached") else {0: "holds", 1: "VIOLATION"}.get(r["exit"], "ERROR")
            print(f"  {r['stage']:12} {verdict:11} {r['seconds']:7.1f}s")
        sys.stdout.flush()
    return worst
