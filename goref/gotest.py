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

from palloc.spec.errors import PallocError

_TEST_FUNC = re.compile(r"^func (Test\w+)\(t \*testing\.T\)", re.M)


@dataclasses.dataclass
class GoTestResult:
    name: str
    passed: bool
    errors: list[str]  # the t.Errorf lines, "file:line: message"
    output: str

    def to_json(self) -> dict:
        return {"name": self.name, "passed": self.passed, "errors": self.errors}


def run_go_test(test_file: str | Path, goarch: str = "amd64", goroot: str | None = None,
                extra_overlay: dict[str, str] | None = None, timeout: float = 120.0) -> GoTestResult:
    """Builds the runtime's tests with the overlay, `extra_overlay` (a patch's, if any) and
    test_file, runs test_file's test function, and returns how it went.

    Raises PallocError (one line) when the file has no test function, does not compile, or the
    test binary crashes or hangs instead of passing or failing.
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
    try:
        r = subprocess.run([str(binary), f"-test.run=^{name}$", "-test.v", "-test.count=1"], capture_output=True,
                           text=True, timeout=timeout, env=tc.env(goarch))
    except subprocess.TimeoutExpired:
        raise PallocError(f"the Go test {name} did not finish in {timeout:.0f}s") from None
    out = r.stdout + r.stderr
    if r.returncode == 0 and f"--- PASS: {name}" in out:
        return GoTestResult(name, True, [], out)
    if r.returncode == 1 and f"--- FAIL: {name}" in out:
        errors = [line.strip() for line in r.stdout.splitlines() if re.match(r"^\s+\S+_test\.go:\d+: ", line)]
        return GoTestResult(name, False, errors, out)
    tail = [l for l in out.splitlines() if l.strip()][-3:]
    raise PallocError(f"the Go test {name} neither passed nor failed (exit {r.returncode}): {' | '.join(tail)}")
