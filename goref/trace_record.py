"""Record a real Go program's page-allocator calls: build it on an overlay of the real runtime, run it.

The overlay (`go build -overlay`) adds goref/traceoverlay/palloc_trace.go to package runtime and
replaces mheap.go, mgcscavenge.go, mgc.go, proc.go and malloc.go with copies whose calls on
mheap_.pages go through its recording wrappers (Go 1.27.3's src/runtime; each rewrite names the
exact text it replaces and must find it exactly as often as expected, or the build is refused
naming it). The copies live in a temporary folder; GOROOT is only read.

The program writes fixed-size records to a file it inherits ($PALLOC_TRACE_FD names the
descriptor); palloc then compresses them with the metadata into the trace file (goref/trace.py,
goref/TRACE.md), written to a temporary name and renamed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from palloc.goref import procs
from palloc.goref.build import BUILD_ENV
from palloc.goref.toolchain import Toolchain
from palloc.goref.trace import RECORD_BYTES, TraceError, decode, write_trace
from palloc.spec.errors import PallocError

HOOK_FILE = Path(__file__).resolve().parent / "traceoverlay" / "palloc_trace.go"

# One row per runtime call site the overlay hooks: a table, its rows alike by design.
# (runtime file, text, replacement, how many times it must occur)
REWRITES: tuple[tuple[str, str, str, int], ...] = (
    ("mheap.go", "*c = h.pages.allocToCache()", "*c = pallocTracedAllocToCache(&h.pages)", 1),
    ("mheap.go", "base, scav = c.alloc(npages)", "base, scav = pallocTracedCacheAlloc(c, npages)", 1),
    ("mheap.go", "h.pages.find(npages + extraPages)", "pallocTracedFind(&h.pages, npages + extraPages)", 2),
    ("mheap.go", "h.pages.allocRange(base, npages)", "pallocTracedAllocRange(&h.pages, base, npages)", 1),
    ("mheap.go", "h.pages.alloc(npages)", "pallocTracedAlloc(&h.pages, npages)", 2),
    ("mheap.go", "h.pages.grow(", "pallocTracedGrow(&h.pages, ", 2),
    ("mheap.go", "h.pages.markRandomPaddingPages(", "pallocTracedMarkRandomPaddingPages(&h.pages, ", 1),
    ("mheap.go", "h.pages.free(s.base(), s.npages)", "pallocTracedFree(&h.pages, s.base(), s.npages)", 1),
    ("mheap.go", "h.pages.scavenge(", "pallocTracedScavenge(&h.pages, ", 2),
    ("mgcscavenge.go", "mheap_.pages.scavenge(n, nil, false)", "pallocTracedScavenge(&mheap_.pages, n, nil, false)", 1),
    ("mgcscavenge.go", "\t\t\tp.update(addr, uintptr(npages), true, true)\n",
     "\t\t\tp.update(addr, uintptr(npages), true, true)\n\t\t\tpallocTraceScavTake(p, ci, searchIdx, max, base, npages)\n", 1),
    ("mgcscavenge.go", "\t\t\tp.chunkOf(ci).scavenged.setRange(base, npages)\n",
     "\t\t\tp.chunkOf(ci).scavenged.setRange(base, npages)\n\t\t\tpallocTraceScavGive(p, ci, base, npages)\n", 1),
    ("mgcscavenge.go", "\tp.scav.index.setEmpty(ci)\n",
     "\tp.scav.index.setEmpty(ci)\n\tpallocTraceScavEmpty(p, ci, searchIdx, max)\n", 1),
    ("mgc.go", "mheap_.pages.scav.index.nextGen()", "mheap_.pages.scav.index.nextGen(); pallocTraceNextGen()", 1),
    ("mgc.go", "pp.pcache.flush(&mheap_.pages)", "pallocTracedFlush(&pp.pcache, &mheap_.pages)", 1),
    ("proc.go", "pp.pcache.flush(&mheap_.pages)", "pallocTracedFlush(&pp.pcache, &mheap_.pages)", 1),
    ("proc.go", "\texithook.Run(code)\n", "\texithook.Run(code)\n\tpallocTraceExit()\n", 1),
    ("malloc.go", "h.pages.enableChunkHugePages()", "h.pages.enableChunkHugePages(); pallocTraceEnableHuge()", 1),
    ("malloc.go", "atomic.StorepNoWB(unsafe.Pointer(&l2[ri.l2()]), unsafe.Pointer(r))",
     "atomic.StorepNoWB(unsafe.Pointer(&l2[ri.l2()]), unsafe.Pointer(r)); pallocTraceArena(ri)", 1),
)

# Every state snapshot's spacing, in locked operations, unless --state-every says otherwise.
STATE_EVERY = 5000
# The recording twins (seeded broken recorders) the hook knows, for tests.
TWINS = ("drop-flush", "drop-free")


def write_overlay(tc: Toolchain, folder: Path) -> Path:
    """Writes the rewritten runtime files and overlay.json into folder; returns overlay.json.

    Raises PallocError naming the file and text when this runtime's source differs from the layout
    the rewrites expect (another Go version)."""
    rt = tc.runtime_dir
    texts: dict[str, str] = {}
    for name, old, new, count in REWRITES:
        if name not in texts:
            try:
                texts[name] = (rt / name).read_text()
            except OSError as e:
                raise PallocError(f"cannot read {rt / name} ({e.strerror or e}); check the toolchain") from None
        got = texts[name].count(old)
        if got != count:
            raise PallocError(
                f"palloc trace record: src/runtime/{name} of {tc.version} has {old.strip()!r} {got} times, "
                f"the recorder expects {count} (it supports Go 1.27's runtime)")
        texts[name] = texts[name].replace(old, new)
    replace = {}
    for name, text in texts.items():
        out = folder / name
        out.write_text(text)
        replace[str(rt / name)] = str(out)
    replace[str(rt / "palloc_trace.go")] = str(HOOK_FILE)
    ov = folder / "overlay.json"
    ov.write_text(json.dumps({"Replace": replace}, indent=1))
    return ov


def build(tc: Toolchain, program: str, out: Path, goarch: str, workdir: Path, traced: bool = True,
          timeout: float = 1800.0, extra_env: dict | None = None) -> None:
    """Builds program (a package path or a main package folder) to out, with the recording overlay
    unless traced is False (the same build without it, for the no-perturbation check)."""
    cmd = [str(tc.go), "build", "-o", str(out)]
    if traced:
        cmd += ["-overlay", str(write_overlay(tc, workdir))]
    cwd = None
    env = tc.env(goarch, **BUILD_ENV, **(extra_env or {}))
    if os.path.isdir(program):
        cwd, program = program, "."
        if not (Path(cwd) / "go.mod").exists():
            env["GO111MODULE"] = "off"  # a folder of a main package importing std only
    cmd.append(program)
    try:
        r = procs.run(cmd, env=env, cwd=cwd, timeout=timeout, text=True)
    except subprocess.TimeoutExpired:
        raise PallocError(f"building {program} took over {timeout:.0f} s; try again on a less loaded machine") from None
    if r.returncode != 0:
        lines = [ln for ln in (r.stderr or "").splitlines() if ln.strip()]
        first = next((ln for ln in lines if "palloc_trace" in ln or ": " in ln), lines[0] if lines else "")
        raise PallocError(f"go build {program} failed for GOARCH={goarch}: {first.strip()}")


def record(tc: Toolchain, program: str, args: list[str], output: str | os.PathLike, goarch: str | None = None,
           state_every: int = STATE_EVERY, twin: str | None = None, env: dict | None = None,
           cwd: str | None = None, timeout: float | None = None, capture: bool = False,
           build_env: dict | None = None) -> dict:
    """Builds program with the recording overlay, runs it with args, writes the trace to output.

    Returns the metadata written (with the program's exit code, wall time, record count). The
    program's own output is passed through. A program that fails still gives a trace if it reached
    its exit hooks; one that crashed or was killed gives none (its trace would lack the end)."""
    from palloc.goref.targets import target

    goarch = goarch or tc.goarch
    tgt = target(goarch)
    if tgt.goos != tc.goos or tgt.runner not in ("native", "qemu"):
        raise PallocError(f"--goarch {goarch}: palloc trace record runs {tc.goos} programs, natively or under "
                          "qemu-user (the recording overlay writes with the Linux runtime's write1)")
    output = Path(output)
    if not output.parent.is_dir():
        raise PallocError(f"{output.parent} is not a folder; give -o a path in an existing folder")
    if twin is not None and twin not in TWINS:
        raise PallocError(f"unknown recording twin {twin!r}; choose one of {', '.join(TWINS)}")
    work = Path(procs.tempdir("trace"))
    try:
        exe = work / "prog"
        t0 = time.monotonic()
        build(tc, program, exe, goarch, work, extra_env=build_env)
        build_s = time.monotonic() - t0
        raw_path = work / "records.bin"
        fd = os.open(raw_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        run_env = dict(env if env is not None else tc.env())
        run_env.update({"PALLOC_TRACE_FD": str(fd), "PALLOC_TRACE_STATE_EVERY": str(state_every)})
        if twin:
            run_env["PALLOC_TRACE_TWIN"] = twin
        else:
            run_env.pop("PALLOC_TRACE_TWIN", None)
        t0 = time.monotonic()
        try:
            proc = procs.popen([*tgt.command(exe), *args], env=run_env, cwd=cwd, pass_fds=(fd,),
                               stdout=subprocess.PIPE if capture else None)
            try:
                out, _ = proc.communicate(timeout=timeout)
                rc = proc.returncode
            except BaseException:
                procs.kill_group(proc)
                raise
        except subprocess.TimeoutExpired:
            raise PallocError(f"{program} ran over {timeout:.0f} s and was stopped; no trace written") from None
        finally:
            os.close(fd)
        run_s = time.monotonic() - t0
        raw = raw_path.read_bytes()
        meta = {
            "goarch": goarch, "goos": tc.goos, "go_version": tc.version, "program": program,
            "args": list(args), "exit_code": rc, "run_seconds": round(run_s, 3),
            "build_seconds": round(build_s, 1), "records": len(raw) // RECORD_BYTES, "state_every": state_every,
            "twin": twin,
        }
        if capture:
            meta["stdout"] = out.decode(errors="replace")
        try:
            if not raw:
                raise TraceError("no records")
            decode(output, meta, raw)
        except TraceError:
            raise PallocError(f"{program} ended (exit code {rc}) without reaching its exit hooks (a crash, a "
                              "fatal error or a signal), so its trace has no end; nothing written") from None
        write_trace(output, meta, raw)
        return meta
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- the standard workloads (palloc trace workloads) ----------------------------------------

WORKLOAD_DIR = Path(__file__).resolve().parent / "workloads"


def _importcfg(tc: Toolchain, pkg: str, goarch: str, folder: Path) -> Path:
    """Writes an importcfg naming the export data of pkg's dependencies (built by go list)."""
    r = procs.run([str(tc.go), "list", "-export", "-deps", "-f",
                   "{{if .Export}}packagefile {{.ImportPath}}={{.Export}}{{end}}", pkg],
                  env=tc.env(goarch, **BUILD_ENV), timeout=1800, text=True)
    if r.returncode != 0:
        raise PallocError(f"go list {pkg} failed: {(r.stderr or '').strip().splitlines()[:1]}")
    cfg = folder / "importcfg"
    cfg.write_text(r.stdout)
    return cfg


def workloads(tc: Toolchain, goarch: str, folder: Path) -> dict[str, tuple[str, list[str], dict | None]]:
    """Returns the standard workloads: name -> (program, args, env). folder receives their inputs."""
    src = tc.goroot / "src"
    pkg = "go/types"
    r = procs.run([str(tc.go), "list", "-f", '{{.Dir}}|{{join .GoFiles "|"}}', pkg],
                  env=tc.env(goarch, **BUILD_ENV), timeout=600, text=True)
    d, *names = r.stdout.strip().split("|")
    files = [str(Path(d) / n) for n in names]
    cfg = _importcfg(tc, pkg, goarch, folder)
    out = {
        "binarytrees": (str(WORKLOAD_DIR / "binarytrees"), ["16"], None),
        "mapchurn": (str(WORKLOAD_DIR / "mapchurn"), ["40"], None),
        "largeobjects": (str(WORKLOAD_DIR / "largeobjects"), ["60"], None),
        "growshrink": (str(WORKLOAD_DIR / "growshrink"), ["1024"], None),
        "gofmt": ("cmd/gofmt", ["-l", str(src)], None),
        "govet": ("cmd/go", ["vet", "container/list"], None),
        "compile": ("cmd/compile", ["-p", pkg, "-std", "-complete", "-importcfg", str(cfg),
                                     "-o", str(folder / "types.a"), *files], None),
    }
    if goarch != tc.goarch:
        # A go command built for another GOARCH runs its tools (compile, vet) from that GOARCH's
        # tool folder, which this GOROOT lacks and palloc must not write.
        del out["govet"]
    return out


def run_plain(tc: Toolchain, program: str, args: list[str], goarch: str, build_env: dict | None = None,
              env: dict | None = None, timeout: float = 600.0) -> str:
    """Builds program without the recording overlay, runs it, returns its standard output (for the
    check that recording does not change what the allocator does)."""
    work = Path(procs.tempdir("trace"))
    try:
        exe = work / "prog"
        build(tc, program, exe, goarch, work, traced=False, extra_env=build_env)
        r = procs.run([str(exe), *args], env=dict(env if env is not None else tc.env()), timeout=timeout)
        return r.stdout.decode(errors="replace")
    finally:
        shutil.rmtree(work, ignore_errors=True)
