"""Run the runtime's own page-allocator tests on a (possibly patched) runtime, test by test.

This is the baseline palloc is measured against: for a runtime patch, which of the runtime's own
tests (`go test -run 'PageAlloc|PallocBits|...' runtime`) fail, crash or hang. The test binary is
built once with `go test -c -overlay` (so "does not compile" is its own verdict, and the compile time
is separate from the test time), then run under `go tool test2json`, whose events say per test
whether it passed, failed or was still running when the binary died (a crash or a throw).

verify-change runs it on every patch (run_test_binary on the patched helper); `palloc mutants
baseline` measures every mutant of goref/mutants/ and writes goref/mutants/baseline.json, from
which `palloc mutants generate` fills the manifest's columns.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

from palloc.goref import procs
from palloc.goref.files import write_atomic
from palloc.goref.patch import Overlay, apply_patch
from palloc.goref.toolchain import find_toolchain
from palloc.goref.toolchain import go_env as toolchain_env
from palloc.spec.errors import PallocError

# The runtime's page-allocator tests (the task's baseline set).
PAGE_ALLOC_TESTS = "PageAlloc|PallocBits|PallocSum|PageCache|Scav|AddrRange|MallocBitsPopcntRange|FindBitRange64|FillAligned"
MUTANTS_DIR = Path(__file__).resolve().parent / "mutants"


def go_binary() -> str:
    """Returns the go command of the toolchain palloc uses (goref/toolchain.py find_toolchain)."""
    return str(find_toolchain().go)


def default_goroot() -> Path:
    """Returns GOROOT of that toolchain."""
    return find_toolchain().goroot


def go_env(goarch: str | None = None) -> dict[str, str]:
    """Returns the environment for go commands: the local toolchain only, optionally cross-GOARCH."""
    return toolchain_env(None, goarch)


@dataclasses.dataclass
class BaselineResult:
    """The runtime's own tests on one runtime: build outcome, per-test outcomes, timings.

    verdict: "caught" (a test failed, crashed or hung), "missed" (all passed), "not compiled".
    tests maps each top-level test name to "pass", "fail", "skip" or "crashed" (running when the
    binary died or timed out).
    """

    verdict: str
    compiles: str  # "yes" | "no"
    build_seconds: float
    test_seconds: float = 0.0
    tests: dict[str, str] = dataclasses.field(default_factory=dict)
    failed: list[str] = dataclasses.field(default_factory=list)
    exit_code: int | None = None
    detail: str = ""  # first lines of the compiler error, or the crash's first line

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def build_test_binary(overlay: Overlay | None, out: Path, goroot: Path, goarch: str | None = None,
                      timeout: float = 900) -> tuple[bool, float, str]:
    """Builds the runtime's test binary with the overlay; returns (ok, seconds, compiler output)."""
    cmd = [go_binary(), "test", "-c", "-vet=off", "-o", str(out)]
    with tempfile.TemporaryDirectory(prefix="palloc-baseline-") as d:
        if overlay is not None and overlay.files:
            cmd += ["-overlay", str(overlay.write_json(Path(d) / "overlay.json"))]
        cmd.append("runtime")
        t0 = time.monotonic()
        try:
            r = procs.run(cmd, cwd=goroot / "src" / "runtime", text=True, env=go_env(goarch), timeout=timeout)
        except subprocess.TimeoutExpired:
            return False, time.monotonic() - t0, f"go test -c timed out after {timeout:.0f} s"
        return r.returncode == 0 and out.exists(), time.monotonic() - t0, (r.stdout + r.stderr).strip()


def run_test_binary(binary: Path, regex: str = PAGE_ALLOC_TESTS, timeout: float = 300,
                    goarch: str | None = None) -> tuple[dict[str, str], int | None, float, str]:
    """Runs the test binary under test2json; returns (per-test outcome, exit code, seconds, crash line).

    A test still running when the binary exits (crash, throw) or is killed (timeout) is "crashed".
    The binary's own -test.timeout ends a hung test (printing its goroutines); if even that does
    not end it, test2json and the binary are killed together (procs.run: one process group).
    """
    from palloc.goref.build import target_goarch
    from palloc.goref.targets import host_goarch, target

    # test2json runs the binary natively, or under the GOARCH's emulator (goref/targets.py).
    run_as = target(goarch or host_goarch()).command(binary)
    cmd = [go_binary(), "tool", "test2json", "-t", *run_as, "-test.v=test2json",
           "-test.run", regex, "-test.timeout", f"{int(timeout)}s", "-test.count", "1"]
    t0 = time.monotonic()
    try:
        # The go command wants a real GOARCH (wasip1 is GOARCH=wasm).
        r = procs.run(cmd, text=True, env=go_env(target_goarch(goarch)), timeout=timeout + 30, cwd=binary.parent)
        stdout, code = r.stdout, r.returncode
    except subprocess.TimeoutExpired as e:
        stdout = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        code = None
    secs = time.monotonic() - t0
    tests: dict[str, str] = {}
    crash = ""
    for line in stdout.splitlines():
        try:
            ev = json.loads(line)
        except json.JSONDecodeError:
            continue
        name, action = ev.get("Test"), ev.get("Action")
        if name is None:
            if action == "output" and not crash:
                out = ev.get("Output", "")
                if out.startswith(("panic:", "fatal error:", "SIGSEGV", "unexpected fault", "runtime: ")):
                    crash = out.strip()
            continue
        top = name.split("/", 1)[0]
        if action == "run" and "/" not in name:
            tests.setdefault(top, "running")
        elif action in ("pass", "fail", "skip") and "/" not in name:
            tests[top] = action
        elif action == "output" and not crash:
            out = ev.get("Output", "")
            if out.lstrip().startswith(("panic:", "fatal error:", "SIGSEGV", "unexpected fault")):
                crash = f"{top}: {out.strip()}"
    tests = {k: ("crashed" if v == "running" else v) for k, v in tests.items()}
    hung = re.search(r"panic: test timed out after [0-9a-z.]+", stdout)
    if hung and (not crash or crash.startswith(("panic: test timed out", "running tests:"))):
        crash = f"the tests hung ({hung.group(0)})"
    elif not crash and code is None:
        crash = f"the tests hung: no end within {timeout + 30:.0f} s; killed"
    return tests, code, secs, crash


def run_baseline_on_helper(overlay: Overlay | None, goarch: str | None = None, regex: str = PAGE_ALLOC_TESTS,
                           test_timeout: float = 300) -> BaselineResult:
    """Runs the runtime's page-allocator tests in the cached Go helper built on the patched runtime.

    The helper is the runtime's own test binary plus palloc's test-only overlay files, which change
    no runtime code, so the runtime's tests behave in it as in a plain `go test -c`; building it
    here means a later `palloc verify-change` of the same patch finds it in the cache.
    """
    from palloc.goref.build import build_helper

    tc = find_toolchain()
    t0 = time.monotonic()
    try:
        binary = build_helper(tc, goarch, dict(overlay.files) if overlay else None)
    except PallocError as e:
        return BaselineResult("not compiled", "no", time.monotonic() - t0, detail=str(e))
    build_s = time.monotonic() - t0
    tests, code, test_s, crash = run_test_binary(binary, regex, test_timeout, goarch)
    failed = sorted(t for t, v in tests.items() if v in ("fail", "crashed"))
    if not tests and code == 0:
        raise PallocError(f"the runtime's tests matched nothing for -run {regex!r}; is this a Go runtime?")
    caught = bool(failed) or code != 0
    return BaselineResult("caught" if caught else "missed", "yes", build_s, test_s, tests, failed, code, crash)


def run_baseline(overlay: Overlay | None, goroot: Path, goarch: str | None = None, regex: str = PAGE_ALLOC_TESTS,
                 workdir: Path | None = None, test_timeout: float = 300) -> BaselineResult:
    """Builds a plain runtime test binary with the overlay and runs the runtime's page-allocator tests."""
    with tempfile.TemporaryDirectory(prefix="palloc-baseline-", dir=workdir) as d:
        binary = Path(d) / "runtime.test"
        ok, build_s, out = build_test_binary(overlay, binary, goroot, goarch)
        if not ok:
            lines = [l for l in out.splitlines() if l.strip() and not l.startswith("#")]
            return BaselineResult("not compiled", "no", build_s, detail=" | ".join(lines[:3]))
        tests, code, test_s, crash = run_test_binary(binary, regex, test_timeout, goarch)
    failed = sorted(t for t, v in tests.items() if v in ("fail", "crashed"))
    caught = bool(failed) or code not in (0,)
    if not tests and code == 0:
        raise PallocError(f"the runtime's tests matched nothing for -run {regex!r}; is this a Go runtime?")
    return BaselineResult("caught" if caught else "missed", "yes", build_s, test_s, tests, failed, code, crash)


def compile_overlay(overlay: Overlay, goroot: Path, goarch: str | None = None, timeout: float = 600) -> tuple[bool, str]:
    """Compiles package runtime with the overlay (`go build -overlay ... runtime`); returns (ok, first error).

    Much cheaper than building the test binary (no package depending on runtime is rebuilt);
    used to check that every corpus patch compiles.
    """
    with tempfile.TemporaryDirectory(prefix="palloc-compile-") as d:
        js = overlay.write_json(Path(d) / "overlay.json")
        r = subprocess.run([go_binary(), "build", "-overlay", str(js), "-o", os.devnull, "runtime"],
                           cwd=goroot / "src" / "runtime", capture_output=True, text=True, env=go_env(goarch), timeout=timeout)
    if r.returncode == 0:
        return True, ""
    lines = [l for l in r.stderr.splitlines() if l.strip() and not l.startswith("#")]
    return False, (lines[0] if lines else f"go build exited {r.returncode}")


def corpus(ids: list[str] | None = None) -> list[dict]:
    """Returns the corpus entries of goref/mutants/manifest.toml (all, or those with the given ids)."""
    import tomllib

    entries = tomllib.loads((MUTANTS_DIR / "manifest.toml").read_text())["mutant"]
    if ids:
        unknown = set(ids) - {e["id"] for e in entries}
        if unknown:
            raise PallocError(f"unknown mutant id(s): {', '.join(sorted(unknown))}; see goref/mutants/manifest.toml")
        entries = [e for e in entries if e["id"] in ids]
    return entries


def measure(jobs: list[tuple[str, Path]], out: Path | None, goarch: str | None = None, *, plain: bool = False,
            compile_only: bool = False, skip_done: bool = False, say=print) -> dict:
    """Runs the runtime's own tests (or, with compile_only, only compiles package runtime) with each
    (name, patch) of jobs and returns the results by name; with out, they are merged into that JSON
    file (compile_only: compile.json beside it) after every patch, so an interrupted run keeps them.

    plain builds a plain runtime test binary instead of the cached helper (the two give the same
    verdicts; the helper is then in the cache for a later verify-change of the same patch).
    """
    goroot = default_goroot()
    if compile_only:
        path = out.with_name("compile.json") if out else None
    else:
        path = out
    prior = json.loads(path.read_text()) if path and path.exists() else {}
    results = prior if compile_only else prior.get("results", {})
    with tempfile.TemporaryDirectory(prefix="palloc-overlays-") as ovroot:
        for name, patch_file in jobs:
            if skip_done and name in results:
                continue
            ov = apply_patch(patch_file, goroot, Path(ovroot))
            if compile_only:
                ok, msg = compile_overlay(ov, goroot, goarch)
                results[name] = {"ok": ok, "error": msg}
                say(f"{name:48} {'compiles' if ok else 'DOES NOT COMPILE: ' + msg}")
                doc = results
            else:
                res = run_baseline(ov, goroot, goarch) if plain else run_baseline_on_helper(ov, goarch)
                results[name] = {k: v for k, v in res.as_dict().items() if k != "tests"}
                say(f"{name:48} {res.verdict:13} build {res.build_seconds:5.1f}s tests {res.test_seconds:5.1f}s "
                    f"{','.join(res.failed)[:80]}")
                doc = {"regex": PAGE_ALLOC_TESTS, "goarch": goarch or "host", "results": results}
            if path:
                write_atomic(path, json.dumps(doc, indent=1, sort_keys=True) + "\n")
    return results
