"""Runs a Go test that `palloc fuzz` wrote (`<id>_test.go`) against a real runtime.

The test is added to the runtime's test package beside palloc's overlay (it calls the overlay's
exports, e.g. `PallocFind`) and built by the same cached `go test -c -overlay` as the helper
(goref/build.py), then its one function is run. So the counterexample a user pastes into the
runtime's tests is known to compile, and known to fail (or pass) where palloc says it does.

Mirrors no Go file.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path

from palloc.goref import procs
from palloc.spec.errors import PallocError

_TEST_FUNC = re.compile(r"^func (Test\w+)\(t \*testing\.T\)", re.M)


@dataclasses.dataclass
class GoTestResult:
    """How a Go test went: outcome "pass", "fail" (t.Errorf), "crash" (the runtime threw,
    faulted or panicked: a crash divergence's test fails this way) or "hang" (killed at the
    timeout, after SIGQUIT asked the runtime where it was)."""

    name: str
    passed: bool
    errors: list[str]  # the t.Errorf lines, "file:line: message"; for a crash its `fatal error:` line and frames
    output: str
    outcome: str = ""

    def __post_init__(self):
        if not self.outcome:
            self.outcome = "pass" if self.passed else "fail"

    def to_json(self) -> dict:
        return {"name": self.name, "passed": self.passed, "outcome": self.outcome, "errors": self.errors}

    def said(self) -> str:
        """One line: PASS, FAIL, or how it crashed or hung."""
        if self.outcome in ("pass", "fail"):
            return self.outcome.upper()
        head = self.errors[0] if self.errors else ""
        return f"{'CRASH' if self.outcome == 'crash' else 'HANG'}" + (f" ({head})" if head else "")


def crash_lines(out: str) -> list[str]:
    """Returns a crashed test binary's crash line (`fatal error: ...`, `panic: ...`, a signal)
    and the first frames of its stack, as goref/driver.py parses a helper's death."""
    from palloc.goref.driver import parse_crash

    c = parse_crash(out)
    head = {"go-throw": "fatal error: ", "go-panic": "panic: "}.get(c["kind"], "")
    lines = [head + c["msg"]] if c.get("msg") else []
    return lines + [f"at {f}" for f in c.get("stack", [])[:6]]


def passed_or_failed(name: str, r, error_file: str = r"\S+_test\.go") -> GoTestResult | None:
    """Returns the verdict of test name's finished `go test` run r when it passed or failed, its
    errors the output lines that name a file matching error_file; None when it did neither (a
    crash or a hang, which the caller names)."""
    out = r.stdout + r.stderr
    if r.returncode == 0 and f"--- PASS: {name}" in out:
        return GoTestResult(name, True, [], out)
    if r.returncode == 1 and f"--- FAIL: {name}" in out:
        errors = [line.strip() for line in r.stdout.splitlines() if re.match(rf"^\s+{error_file}:\d+: ", line)]
        return GoTestResult(name, False, errors, out)
    return None


def run_go_test(test_file: str | Path, goarch: str = "amd64", goroot: str | None = None,
                extra_overlay: dict[str, str] | None = None, timeout: float = 20.0) -> GoTestResult:
    """Builds the runtime's tests with the overlay, `extra_overlay` (a patch's, if any) and
    test_file, runs test_file's test function, and returns how it went (see GoTestResult).

    Raises PallocError (one line) when the file has no test function or does not compile.
    timeout: the test's own (a case's test answers in milliseconds; past it, it hangs).
    """
    from palloc.goref.build import build_helper
    from palloc.goref.toolchain import find_toolchain

    test_file = Path(test_file)
    try:
        src = test_file.read_text()
    except OSError as e:
        raise PallocError(f"cannot read {test_file}: {e.strerror}") from None
    m = _TEST_FUNC.search(src)
    if m is None:
        raise PallocError(f"{test_file} has no `func TestX(t *testing.T)`; pass a _test.go file written by `palloc fuzz`")
    name = m.group(1)
    tc = find_toolchain(goroot)
    overlay = dict(extra_overlay or {})
    overlay[f"src/runtime/palloc_case_{test_file.stem}.go"] = str(test_file.resolve())
    try:
        binary = build_helper(tc, goarch, overlay)
    except PallocError as e:
        raise PallocError(f"the Go test {test_file.name} does not build: {str(e).split(' failed: ', 1)[-1]}") from None
    # -test.timeout makes a hung runtime print its goroutines (as SIGQUIT would) and exit.
    from palloc.goref.targets import target

    # Natively, or under the GOARCH's emulator (qemu-user, node, wasmtime): goref/targets.py.
    cmd = [*target(goarch).command(binary, tc.goroot), f"-test.run=^{name}$", "-test.v", "-test.count=1",
           f"-test.timeout={max(1, int(timeout))}s"]
    try:
        # GOTRACEBACK=crash: a hung test's every thread prints its stack (goref/driver.py hang_stack).
        r = procs.run(cmd, text=True, timeout=timeout + 30, env={**tc.env(goarch), "GOTRACEBACK": "crash"})
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or "") + (e.stderr or "") if isinstance(e.stdout, str) else ""
        return GoTestResult(name, False, crash_lines(out) or [f"no answer in {timeout + 30:.0f}s; killed"], out, "hang")
    verdict = passed_or_failed(name, r)
    if verdict is not None:
        return verdict
    out = r.stdout + r.stderr
    if "panic: test timed out after" in out:
        from palloc.goref.driver import hang_stack

        where = [f"at {f}" for f in hang_stack(out)[:6]]
        return GoTestResult(name, False, [f"hung: no answer in {timeout:.0f}s", *where], out, "hang")
    lines = crash_lines(out)
    if not lines:
        lines = [l for l in out.splitlines() if l.strip()][-3:] + [f"exit {r.returncode}"]
    return GoTestResult(name, False, lines, out, "crash")
