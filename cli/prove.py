"""`palloc prove`: run the Z3 proof suite (proofs/thm_*.py) for one platform, all, or a configuration."""

from __future__ import annotations

import json
import sys
import time
import tomllib

from palloc.cli._args import goroot, json_option
from palloc.spec import constants
from palloc.spec.errors import PallocError


HELP = "run the Z3 proof suite (packing, summary merge, no double allocation, address arithmetic)"
DESCRIPTION = (
    "Prove every theorem of the proof suite. Each obligation ends proved, counterexample "
    "(printed in pages, chunks, summaries and hex addresses) or unknown; unknown and timeouts fail. "
    "Exit 0 when every obligation is proved (and, with --broken, every broken variant gives the verdict the "
    "manifest expects), 1 otherwise, 2 on a usage error."
)


def arguments(p) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--platform", help="GOOS/GOARCH (default linux/amd64)")
    g.add_argument("--all-platforms", action="store_true", help="every platform in spec/platforms.toml")
    g.add_argument("--config", metavar="FILE", help='a TOML file: base = "linux/amd64" plus overrides, '
                   "e.g. heap_addr_bits = 57 or summary_level_bits = 4")
    p.add_argument("--go-version", default=constants.DEFAULT_GO_VERSION, help="Go version (default %(default)s)")
    p.add_argument("--broken", action="store_true", help="also run the broken variants (they must fail as recorded); each "
                   "line says the verdict the manifest expects and whether it came")
    p.add_argument("--slow", action="store_true", help="also run the slow obligations (e.g. the 16-bit shrink-runs loop)")
    p.add_argument("--only", metavar="PATTERN", help="only obligations whose name matches (glob or substring)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per obligation (default %(default)s)")
    p.add_argument("--jobs", type=int, default=2, help="worker processes (default %(default)s)")
    p.add_argument("--runtime", action="store_true",
                   help="prove the theorems on the runtime's own Go code instead of the model (translated by goref/goast "
                   "from the toolchain under test), and the model's functions equal to the runtime's")
    p.add_argument("--goroot", type=goroot, help="with --runtime: the toolchain whose runtime is proved (default: as "
                   "`palloc fuzz`)")
    json_option(p, "machine-readable output, one record per obligation and platform")


def load_config(path: str):
    """Reads a --config file into a PlatformSpec; raises PallocError with a one-line reason."""
    from palloc.proofs.runner import PlatformSpec

    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise PallocError(f"cannot read config {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise PallocError(f"config {path} is not valid TOML: {e}") from None
    except UnicodeDecodeError as e:
        raise PallocError(f"config {path} is not UTF-8 text (byte {e.start}); save it as UTF-8 TOML") from None
    base = data.pop("base", None)
    if not isinstance(base, str):
        raise PallocError(f'config {path} needs a base platform, e.g. base = "linux/amd64"')
    spec = PlatformSpec(base, tuple(sorted(data.items())))
    try:
        spec.resolve()
    except constants.ConfigError as e:
        raise PallocError(f"config {path}: {e}") from None
    return spec


def _runtime_specs(args, specs):
    """Translates the toolchain's runtime for every platform once (the workers read goast's cache)
    and returns the platforms at the toolchain's Go version."""
    import os

    from palloc.goref.toolchain import find_toolchain
    from palloc.proofs import runner, tv

    tc = find_toolchain(args.goroot)
    os.environ["PALLOC_GOROOT"] = str(tc.goroot)  # the workers translate with the same toolchain
    tv.programs(tc, [s.base for s in specs])
    ver = ".".join(tc.version.removeprefix("go").split(".")[:2])
    if args.go_version not in (constants.DEFAULT_GO_VERSION, ver):
        raise PallocError(f"--go-version {args.go_version}: the toolchain is {tc.version}; pass --goroot of that version")
    return [runner.PlatformSpec(s.base, (("go_version", ver),)) if ver != constants.DEFAULT_GO_VERSION else s
            for s in specs]


def run(args) -> int:
    from palloc.proofs import runner

    if args.timeout <= 0 or args.jobs < 1:
        raise PallocError("--timeout must be positive and --jobs at least 1")
    if args.go_version != constants.DEFAULT_GO_VERSION and args.config:
        raise PallocError("--go-version applies to --platform/--all-platforms; put go_version in the config file")
    if args.config:
        specs = [load_config(args.config)]
    elif args.all_platforms:
        specs = [runner.PlatformSpec(n) for n in constants.platform_names()]
    else:
        name = args.platform or constants.default_platform_name()
        constants.platform(name)  # unknown platform: one-line error
        specs = [runner.PlatformSpec(name)]
    if args.runtime:
        if args.config:
            raise PallocError("--runtime proves the runtime of a toolchain; a --config platform has none")
        specs = _runtime_specs(args, specs)
    elif args.go_version != constants.DEFAULT_GO_VERSION:
        specs = [runner.PlatformSpec(s.base, (("go_version", args.go_version),)) for s in specs]
    tasks = runner.plan(specs, broken=args.broken, only=args.only, slow=args.slow, runtime=args.runtime)
    if not tasks:
        raise PallocError(f"no obligation matches {args.only!r}; see proofs/manifest.toml for the names")
    manifest = runner.load_manifest()

    def expected(r):
        if runner._find(r["obligation"]).is_variant:
            return runner.expected_verdict(manifest, r["obligation"], r["platform"]) or "counterexample"
        return "proved"

    def expectation(t, d) -> str:
        """The line's expected verdict, as the JSON's "expected" says it, and whether it came."""
        exp = {label: expected(dict(d, platform=label)) for label in t.shared_with}
        vals = sorted(set(exp.values()))
        said = vals[0] if len(vals) == 1 else ", ".join(f"{v} on {l}" for l, v in sorted(exp.items()))
        ok = all(v == d["verdict"] for v in exp.values())
        return f"expected {said}: {'as expected' if ok else 'NOT AS EXPECTED'}"

    def show(t, d):
        if args.json:
            return
        where = t.spec.label if len(t.shared_with) == 1 else f"{len(t.shared_with)} platforms"
        print(f"{d['verdict']:15} {d['seconds']:7.2f}s {d['cpu_seconds']:6.2f}cpu  {t.qualname}  [{where}]  "
              f"({expectation(t, d)})")
        if d["counterexample"]:
            for line in d["counterexample"].splitlines():
                print("      " + line)
        if d["reason"]:
            print(f"      solver: {d['reason']}")
        sys.stdout.flush()

    t0 = time.perf_counter()
    results = runner.run(tasks, args.timeout, args.jobs, progress=show)
    wall = time.perf_counter() - t0
    bad = [r for r in results if r["verdict"] != expected(r)]
    if args.json:
        for r in results:
            r["expected"] = expected(r)
        print(json.dumps({"wall_seconds": round(wall, 3), "ok": not bad, "results": results}, indent=1))
    else:
        slow = max(results, key=lambda r: r["cpu_seconds"])
        n_ob = len({r["obligation"] for r in results})
        cpu = sum({(r["obligation"], r["ran_on"]): r["cpu_seconds"] for r in results}.values())
        print(f"{n_ob} obligations, {len(tasks)} solver runs over {len(specs)} platform(s) in {wall:.1f}s wall, "
              f"{cpu:.1f} CPU s; slowest {slow['obligation']} {slow['cpu_seconds']:.2f} CPU s "
              f"({slow['seconds']:.2f}s wall) [{slow['ran_on']}]")
        for r in bad:
            print(f"FAILED {r['obligation']} on {r['platform']}: {r['verdict']} (expected {expected(r)})")
    return 1 if bad else 0
