"""Build the Go helper: the runtime's own test binary with palloc's overlay, cached by content.

`go test -c -vet=off -overlay overlay.json -o <tmp> runtime` compiles package runtime with its test
files plus goref/overlay/*.go (and, for a proposed patch, replacement runtime files). The binary is
cached in platformdirs.user_cache_dir("palloc") under a key that hashes everything that changes it:
the toolchain version, the contents of the runtime source, the overlay files, the extra (patch)
overlay, GOARCH and the build settings. Two processes building at once serialise on a file lock, and
a binary only appears under its final name once it is complete (built to a temporary file in the same
directory, then os.replace), so nobody ever runs a half-written helper.

The user's GOROOT is never written to. The user's GOCACHE is used (rebuilds are then fast) unless it is
unwritable, in which case a GOCACHE inside palloc's cache directory is used.

The helper cache is kept under a size budget (`$PALLOC_HELPER_CACHE_MB`, default 1024 MB), least
recently used first: a helper's mtime is its last use (set when build_helper hands it out), and
after every build the oldest helpers beyond the budget are deleted (`prune_cache`), never one used
in the last ten minutes, never the one just built, and never one whose build lock is held.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import dataclasses
import time
from pathlib import Path

import filelock
import platformdirs

from palloc.goref import procs, progress
from palloc.goref.files import require_writable_dir
from palloc.goref.toolchain import Toolchain, find_toolchain
from palloc.spec.errors import PallocError

OVERLAY_DIR = Path(__file__).resolve().parent / "overlay"
# Files added to package runtime (name in src/runtime -> file in goref/overlay).
OVERLAY_FILES = ("export_palloc_test.go", "palloc_server_test.go")
# Bump when the build command or key layout changes, so old cache entries are not reused.
BUILD_SCHEME = 1
# cgo off: the helper needs no C toolchain, and a GOARCH=386 build needs no 32-bit libc.
BUILD_ENV = {"CGO_ENABLED": "0", "GOWORK": "off"}
# A coverage build (palloc fuzz --coverage, verify-change): count mode, so that a line's count is
# how often it ran, and the overlay's attribution can subtract counts (goref/coverage.py).
COVER_FLAGS = ("-cover", "-covermode=count", "-coverpkg=runtime")

# The helper cache's size budget (bytes) unless $PALLOC_HELPER_CACHE_MB says otherwise, and how
# long after its last use a helper is safe from eviction (a process may be about to exec it).
CACHE_BUDGET_BYTES = 1024 << 20
EVICTION_GRACE_SECONDS = 600.0

_COMPILER_ERROR = re.compile(r"^(?P<file>[^\s:][^:]*\.(?:go|s)):(?P<line>\d+)(?::\d+)?: (?P<msg>.*)$")


CACHE_FIX = "set PALLOC_CACHE_DIR to a folder you can write to"


def cache_dir(writable: bool = True) -> Path:
    """Returns palloc's cache directory; $PALLOC_CACHE_DIR overrides it.

    writable: create it if missing and check that a file can be written there, else raise
    PallocError saying to set PALLOC_CACHE_DIR (a read-only cache must not end in a traceback).
    False only names it, for readers (goref info, the listing of cached helpers).
    """
    d = Path(os.environ.get("PALLOC_CACHE_DIR") or platformdirs.user_cache_dir("palloc"))
    if writable and str(d) not in _WRITABLE:
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise PallocError(f"cannot create palloc's cache {d} ({e.strerror or e}); {CACHE_FIX}") from None
        require_writable_dir(d, f"palloc's cache must be writable: {CACHE_FIX}")
        _WRITABLE.add(str(d))
    return d


_WRITABLE: set[str] = set()  # cache folders this process has written to


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _runtime_files(runtime_dir: Path) -> list[Path]:
    return sorted(p for p in runtime_dir.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def runtime_source_hash(tc: Toolchain) -> str:
    """Returns a SHA-256 of the names and contents of every file under GOROOT/src/runtime.

    Contents, not sizes and mtimes: a patched file of the same size and time must change the key.
    It takes about a third of a second, so it is not memoised.
    """
    h = hashlib.sha256()
    for p in _runtime_files(tc.runtime_dir):
        h.update(f"{p.relative_to(tc.runtime_dir)}\0".encode())
        h.update(_sha256_file(p).encode())
    return h.hexdigest()


def overlay_hash(extra_overlay: dict[str, str] | None = None) -> tuple[str, str]:
    """Returns (hash of palloc's overlay files, hash of the extra overlay's paths and contents)."""
    h = hashlib.sha256()
    for name in OVERLAY_FILES:
        h.update(name.encode() + b"\0" + _sha256_file(OVERLAY_DIR / name).encode())
    e = hashlib.sha256()
    for rel, path in sorted((extra_overlay or {}).items()):
        e.update(rel.encode() + b"\0")
        e.update((_sha256_file(Path(path)) if path else "deleted").encode() + b"\n")
    return h.hexdigest(), e.hexdigest()


def _check_extra(extra_overlay: dict[str, str] | None) -> None:
    for rel, path in (extra_overlay or {}).items():
        if os.path.isabs(rel) or ".." in Path(rel).parts or not rel.startswith("src/"):
            raise PallocError(f"extra overlay key {rel!r} must be a GOROOT-relative path such as src/runtime/mpagealloc.go")
        if path and not Path(path).is_file():
            raise PallocError(f"extra overlay file {path} (for {rel}) does not exist")


def target_goos(tc: Toolchain, goarch: str | None) -> str:
    """Returns the GOOS a helper for goarch (a goref/targets.py name) is built for: js for wasm
    (run under Node.js), wasip1 for wasip1 (under wasmtime), else the toolchain's own (linux)."""
    return {"wasm": "js", "wasip1": "wasip1"}.get(goarch or "", tc.goos)


def target_goarch(goarch: str | None) -> str | None:
    """Returns the real GOARCH of a goref/targets.py name (wasip1 is GOARCH=wasm)."""
    return "wasm" if goarch == "wasip1" else goarch


def cache_key(tc: Toolchain, goarch: str | None = None, extra_overlay: dict[str, str] | None = None,
              coverage: bool = False) -> str:
    """Returns the hex key naming the helper binary for this toolchain, GOARCH and overlay."""
    _check_extra(extra_overlay)
    ov, extra = overlay_hash(extra_overlay)
    parts = {
        "scheme": BUILD_SCHEME,
        "version": tc.version,
        "goos": target_goos(tc, goarch),
        "goarch": goarch or tc.goarch,
        "runtime": runtime_source_hash(tc),
        "overlay": ov,
        "extra_overlay": extra,
        "env": BUILD_ENV,
    }
    if coverage:
        parts["cover"] = COVER_FLAGS
        parts["cover_shim"] = 1  # builds before goref/cover_toolexec.py covered the unpatched files
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def helper_path(tc: Toolchain, goarch: str | None = None, extra_overlay: dict[str, str] | None = None,
                coverage: bool = False) -> Path:
    """Returns where the helper for these inputs lives in the cache (it may not be built yet)."""
    key = cache_key(tc, goarch, extra_overlay, coverage)
    goos = target_goos(tc, goarch)
    cover = "-cover" if coverage else ""
    return cache_dir(writable=False) / "helpers" / f"runtime-{tc.version}-{goos}-{goarch or tc.goarch}{cover}-{key[:20]}.test"


def _cover_toolexec(tc: Toolchain, ov: Path, extra_overlay: dict[str, str] | None, coverage: bool) -> tuple[str, ...]:
    """The -toolexec shim a coverage build needs when the overlay replaces runtime files: without
    it the cover tool reads the GOROOT originals (golang/go#73802) and the patch is not built
    (goref/cover_toolexec.py)."""
    if not coverage or not any(v and (Path(tc.goroot) / k).is_file() for k, v in (extra_overlay or {}).items()):
        return ()
    return ("-toolexec", f"{sys.executable} -m palloc.goref.cover_toolexec {ov}")


def _gocache(tc: Toolchain) -> dict[str, str]:
    """Returns {} to use the user's GOCACHE, or a GOCACHE under palloc's cache if that is unwritable."""
    r = tc.run(["env", "GOCACHE"])
    d = r.stdout.strip()
    if r.returncode == 0 and d and d != "off":
        p = Path(d)
        probe = p if p.exists() else p.parent
        if os.access(probe, os.W_OK):
            return {}
    own = cache_dir() / "gocache"
    own.mkdir(parents=True, exist_ok=True)
    return {"GOCACHE": str(own)}


def overlay_document(tc: Toolchain, extra_overlay: dict[str, str] | None = None) -> dict:
    """Returns the `go -overlay` JSON: absolute GOROOT paths mapped to replacement files."""
    replace = {str(tc.runtime_dir / name): str(OVERLAY_DIR / name) for name in OVERLAY_FILES}
    for rel, path in (extra_overlay or {}).items():
        replace[str(tc.goroot / rel)] = str(Path(path).resolve()) if path else ""
    return {"Replace": replace}


def compile_error_summary(output: str) -> str:
    """Returns "file:line: message (and N more)" for the first compiler error in `output`."""
    errors = [m for m in map(_COMPILER_ERROR.match, output.splitlines()) if m]
    if not errors:
        tail = [l for l in output.strip().splitlines() if l.strip()]
        return tail[-1] if tail else "no output"
    m = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{m['file']}:{m['line']}: {m['msg']}{more}"


def build_helper(
    tc: Toolchain | None = None,
    goarch: str | None = None,
    extra_overlay: dict[str, str] | None = None,
    *,
    force: bool = False,
    timeout: float = 1800,
    coverage: bool = False,
) -> Path:
    """Returns the path of a built helper binary, building it if the cache has none.

    `extra_overlay` maps GOROOT-relative paths (src/runtime/mpagealloc.go) to replacement files
    ("" deletes the file), as a runtime patch is applied. Raises PallocError naming file:line of
    the first compiler error if the build fails. coverage: package runtime instrumented for
    coverage (COVER_FLAGS; goref/coverage.py reads what it counts).
    """
    tc = tc or find_toolchain()
    goarch = goarch or tc.goarch
    out = helper_path(tc, goarch, extra_overlay, coverage)
    if out.exists() and not force and _use_cached(out):
        return out  # a read-only cache included: nothing needs writing
    cache_dir()  # writable, or one line saying to set PALLOC_CACHE_DIR
    out.parent.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(str(out) + ".lock"):
        if out.exists() and not force and _touch(out):
            return out  # another process built it while we waited
        with tempfile.TemporaryDirectory(dir=out.parent, prefix=".build-") as work:
            ov = Path(work) / "overlay.json"
            ov.write_text(json.dumps(overlay_document(tc, extra_overlay), indent=1))
            tmp = Path(work) / "runtime.test"
            env = tc.env(target_goarch(goarch), **BUILD_ENV, **_gocache(tc), GOOS=target_goos(tc, goarch))
            t0 = time.monotonic()
            what = _build_name(tc, goarch, extra_overlay, coverage)
            limit = progress.bounded(timeout, f"building {what}")  # --total-seconds: what is left of it
            try:
                # Its own process group and TMPDIR (procs.run): a Ctrl-C, a timeout or palloc's
                # death ends go and its compilers, and Go's work folder goes with them.
                with progress.building(what, _last_build_seconds(goarch)):
                    r = procs.run(
                        [str(tc.go), "test", "-c", "-vet=off", *(COVER_FLAGS if coverage else ()),
                         *_cover_toolexec(tc, ov, extra_overlay, coverage), "-overlay", str(ov),
                         "-o", str(tmp), "runtime"],
                        env=env,
                        cwd=work,
                        text=True,
                        timeout=limit,
                    )
                    if r.returncode != 0 or not tmp.is_file():  # within the block: no "built" line
                        raise PallocError(f"building the Go helper ({tc.version} {goarch}) failed: "
                                          f"{compile_error_summary(r.stderr + r.stdout)}")
            except subprocess.TimeoutExpired:
                if limit < timeout:
                    raise progress.BudgetSpent(f"the --total-seconds budget ran out while building {what} "
                                               f"({limit:.0f} s); build it first with `palloc goref build`") from None
                raise PallocError(f"building the Go helper took over {timeout:.0f}s; retry with `palloc goref build`") from None
            meta = {
                "version": tc.version,
                "goroot": str(tc.goroot),
                "goos": target_goos(tc, goarch),
                "goarch": goarch,
                "extra_overlay": extra_overlay or {},
                "coverage": coverage,
                "build_seconds": round(time.monotonic() - t0, 2),
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            (Path(work) / "meta.json").write_text(json.dumps(meta, indent=1))
            os.replace(Path(work) / "meta.json", str(out) + ".json")
            os.replace(tmp, out)
            _touch(out)
    try:
        prune_cache(keep=[out])
    except (OSError, filelock.Timeout):  # eviction is housekeeping: never fail a build over it
        pass
    return out


def _build_name(tc: Toolchain, goarch: str, extra_overlay: dict | None, coverage: bool = False) -> str:
    """Names a build for its progress lines: the helper for go1.27.3 linux/amd64 (patched)."""
    name = f"the helper for go{tc.version.removeprefix('go')} {target_goos(tc, goarch)}/{target_goarch(goarch)}"
    if any(not rel.endswith("_test.go") for rel in extra_overlay or {}):
        name += " on the patched runtime"
    elif extra_overlay:
        name += " with a case's Go test"
    return name + (" with coverage" if coverage else "")


def _last_build_seconds(goarch: str) -> float | None:
    """Returns how long the newest cached helper for goarch took to build, if any (an estimate)."""
    for h in cached_helpers():
        secs = h.meta.get("build_seconds")
        if h.meta.get("goarch") == goarch and isinstance(secs, (int, float)):
            return float(secs)
    return None


# --- the cache's size budget ------------------------------------------------------------------


def _touch(path: Path) -> bool:
    """Marks a cached helper as used now (its mtime); returns False if it has just been evicted."""
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    except OSError:  # a read-only cache: nothing can evict it either
        return path.exists()
    return True


def _use_cached(out: Path) -> bool:
    """Marks a cached helper as used now, under its lock so that prune_cache (which deletes
    under the same lock) either sees the new mtime or has already deleted it; returns False in
    the second case (it must be built again)."""
    try:
        with filelock.FileLock(str(out) + ".lock", timeout=5):
            return _touch(out)
    except filelock.Timeout:  # a build of this key holds the lock: prune_cache cannot take it either
        return _touch(out)
    except OSError:  # no lock can be made in a read-only cache, and nothing can evict from it
        return out.exists()


def pin_helper(binary: Path) -> Path:
    """Returns a private hard link to a cached helper, for a process that will exec it for a
    long time (restarts after deaths included): evicting the helper then frees nothing until
    unpin_helper, and never breaks that process. Returns binary itself when it cannot be linked
    (not in the cache, another filesystem).

    The links live in helpers/.pinned, named after the pinning process; prune_cache removes those
    of processes that are gone.
    """
    binary = Path(binary)
    d = binary.parent / ".pinned"
    if binary.parent != cache_dir(writable=False) / "helpers":
        return binary
    try:
        d.mkdir(exist_ok=True)
        pin = d / f"{os.getpid()}-{os.urandom(4).hex()}-{binary.name}"
        os.link(binary, pin)
    except OSError:
        return binary
    return pin


def unpin_helper(pin: Path) -> None:
    """Removes a link made by pin_helper (a no-op for anything else)."""
    pin = Path(pin)
    if pin.parent.name == ".pinned":
        try:
            pin.unlink()
        except FileNotFoundError:
            pass


def _prune_stale_pins(d: Path) -> None:
    for pin in (d / ".pinned").glob("*-*-*") if (d / ".pinned").is_dir() else ():
        try:
            pid = int(pin.name.split("-", 1)[0])
        except ValueError:
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            unpin_helper(pin)  # its process is gone
        except PermissionError:
            pass  # alive, another user's


def cache_budget_bytes() -> int:
    """Returns the helper cache's size budget: $PALLOC_HELPER_CACHE_MB megabytes, or 1024 MB."""
    v = os.environ.get("PALLOC_HELPER_CACHE_MB")
    if not v:
        return CACHE_BUDGET_BYTES
    try:
        mb = float(v)
    except ValueError:
        raise PallocError(f"PALLOC_HELPER_CACHE_MB={v!r} is not a number of megabytes") from None
    return max(0, int(mb * (1 << 20)))


@dataclasses.dataclass(frozen=True)
class CachedHelper:
    """One helper binary in the cache: its path, size (with its .json) and last use (mtime)."""

    path: Path
    nbytes: int
    last_used: float
    meta: dict

    def to_json(self) -> dict:
        return {"path": str(self.path), "bytes": self.nbytes, "last_used": self.last_used,
                "version": self.meta.get("version"), "goarch": self.meta.get("goarch"),
                "extra_overlay": self.meta.get("extra_overlay") or {}}


def cached_helpers() -> list[CachedHelper]:
    """Returns the helpers in the cache, most recently used first (half-built ones, which live
    in .build-* directories until complete, are not listed)."""
    d = cache_dir(writable=False) / "helpers"
    out = []
    for p in d.glob("*.test") if d.is_dir() else ():
        try:
            st = p.stat()
        except FileNotFoundError:
            continue  # evicted meanwhile
        meta_path = Path(str(p) + ".json")
        try:
            meta_text = meta_path.read_text()
            meta = json.loads(meta_text)
            extra = len(meta_text.encode())
        except (OSError, ValueError):
            meta, extra = {}, 0
        out.append(CachedHelper(p, st.st_size + extra, st.st_mtime, meta))
    out.sort(key=lambda h: (-h.last_used, h.path.name))
    return out


def prune_cache(budget_bytes: int | None = None, keep=(), grace_seconds: float = EVICTION_GRACE_SECONDS,
                now: float | None = None) -> list[Path]:
    """Deletes least recently used helpers until the cache fits budget_bytes; returns their paths.

    Never deleted: a helper in keep, one used less than grace_seconds ago (another process may be
    about to exec it; one already running keeps its file open, which Linux allows deleting), and
    one whose build lock another process holds. So the cache may stay above the budget. The
    0-byte lock files stay (deleting a lock file someone may be opening breaks its exclusion).
    A GoHelper execs a pinned link (pin_helper), so it can restart its process after an
    eviction; the links of processes that are gone are removed here.
    """
    budget = cache_budget_bytes() if budget_bytes is None else budget_bytes
    now = time.time() if now is None else now
    keep = {Path(k).resolve() for k in keep}
    d = cache_dir() / "helpers"
    d.mkdir(parents=True, exist_ok=True)
    removed: list[Path] = []
    with filelock.FileLock(str(d / ".prune.lock"), timeout=60):
        _prune_stale_pins(d)
        helpers = cached_helpers()
        total = sum(h.nbytes for h in helpers)
        for h in reversed(helpers):  # least recently used first
            if total <= budget:
                break
            if h.path.resolve() in keep or now - h.last_used < grace_seconds:
                continue
            lock = filelock.FileLock(str(h.path) + ".lock", timeout=0)
            try:
                lock.acquire()
            except filelock.Timeout:
                continue  # a build of this key is running: leave it alone
            try:
                try:  # used since the listing (build_helper touches before returning)?
                    if now - h.path.stat().st_mtime < grace_seconds:
                        continue
                except FileNotFoundError:
                    pass
                for p in (h.path, Path(str(h.path) + ".json")):
                    try:
                        p.unlink()
                    except FileNotFoundError:
                        pass
            finally:
                lock.release()
            removed.append(h.path)
            total -= h.nbytes
    return removed
