"""Build and run goref/goast (the runtime's own Go source as typed JSON trees) for a toolchain.

goast is a small standard-library Go program (goref/goast/main.go). It is built with the
toolchain under test (`go build`, GOTOOLCHAIN=local, for the host), so the go/types that folds
the runtime's constants is that toolchain's own; the binary is cached under the helper cache
(goref/build.py cache_dir()/goast/), keyed by the toolchain and goast's source. Its results are
cached too (cache_dir()/goast-out/), keyed by goast's source, the toolchain, GOOS/GOARCH, the
runtime files (names, sizes and modification times), the overlay's contents and the functions
asked for, so a second run of the same question reads a file.

    from palloc.goref.goast import translate
    [res] = translate(tc, [("linux", "amd64")], ["packPallocSum"])          # the toolchain's runtime
    [res] = translate(tc, [("linux", "386")], ["pallocBits.find"],
                      overlay={"src/runtime/mpallocbits.go": "/tmp/patched.go"})  # a patched one

Each result is goast's JSON for one platform (see main.go's doc comment). Mirrors no Go file.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path

import filelock

from palloc.goref.build import BUILD_ENV, cache_dir
from palloc.goref.toolchain import Toolchain
from palloc.spec.errors import PallocError

SOURCE_DIR = Path(__file__).resolve().parent / "goast"
SOURCES = ("main.go", "go.mod")
# Runtime functions that end the program; goast does not descend into them (the executor
# gives them the error outcome "throw").
STOP = ("throw", "fatal")


def _source_hash() -> str:
    h = hashlib.sha256()
    for name in SOURCES:
        h.update(name.encode() + b"\0" + (SOURCE_DIR / name).read_bytes())
    return h.hexdigest()[:16]


def _tc_key(tc: Toolchain) -> str:
    return hashlib.sha256(f"{tc.version}\0{tc.goroot}\0{tc.go}".encode()).hexdigest()[:16]


def goast_binary(tc: Toolchain) -> Path:
    """Returns the goast binary built by tc (building it, under a file lock, if not cached)."""
    d = cache_dir() / "goast"
    d.mkdir(parents=True, exist_ok=True)
    out = d / f"goast-{_tc_key(tc)}-{_source_hash()}"
    if out.is_file():
        return out
    with filelock.FileLock(str(out) + ".lock"):
        if out.is_file():
            return out
        with tempfile.TemporaryDirectory(dir=d, prefix=".build-") as work:
            for name in SOURCES:
                (Path(work) / name).write_bytes((SOURCE_DIR / name).read_bytes())
            tmp = Path(work) / "goast"
            env = tc.env(None, **BUILD_ENV)
            env.pop("GOARCH", None)
            env.pop("GOOS", None)
            try:
                r = subprocess.run([str(tc.go), "build", "-o", str(tmp), "."], cwd=work, env=env,
                                   capture_output=True, text=True, timeout=600)
            except subprocess.TimeoutExpired:
                raise PallocError("building goref/goast took over 600 s") from None
            if r.returncode != 0 or not tmp.is_file():
                tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
                raise PallocError(f"building goref/goast with {tc.version} failed: {' | '.join(tail)}")
            os.replace(tmp, out)
    return out


def tool_tags(tc: Toolchain, goos: str, goarch: str) -> list[str]:
    """The build tags the toolchain sets for a platform (goexperiment.*, amd64.v1, ...), which
    decide some of the runtime's and internal/abi's files; cached per toolchain."""
    f = cache_dir() / "goast" / f"tooltags-{_tc_key(tc)}.json"
    try:
        known = json.loads(f.read_text())
    except (OSError, ValueError):
        known = {}
    key = f"{goos}/{goarch}"
    if key in known:
        return known[key]
    env = tc.env(goarch, GOOS=goos, **BUILD_ENV)
    r = subprocess.run([str(tc.go), "list", "-f", "{{join context.ToolTags \" \"}}", "runtime"], env=env,
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise PallocError(f"`go list` for {key} failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
    tags = r.stdout.split()
    known[key] = tags
    f.parent.mkdir(parents=True, exist_ok=True)
    tmp = f.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(known, indent=1, sort_keys=True))
    os.replace(tmp, f)
    return tags


def _runtime_stamp(tc: Toolchain) -> str:
    h = hashlib.sha256()
    for p in sorted(tc.runtime_dir.glob("*.go")):
        st = p.stat()
        h.update(f"{p.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _overlay_stamp(overlay: dict[str, str] | None) -> str:
    h = hashlib.sha256()
    for rel, dst in sorted((overlay or {}).items()):
        h.update(rel.encode() + b"\0")
        h.update(Path(dst).read_bytes() if dst else b"<deleted>")
        h.update(b"\n")
    return h.hexdigest()


def translate(tc: Toolchain, platforms: list[tuple[str, str]], funcs: list[str],
              overlay: dict[str, str] | None = None, *, files: list[str] = (), timeout: float = 600) -> list[dict]:
    """Returns goast's result for each (goos, goarch): the trees of funcs and their callees.

    files (runtime base names, "mpallocbits.go") adds every function declared in them, and lists
    their package variables under "file_vars".

    overlay maps GOROOT-relative paths to replacement files ("" deletes), as goref/patch.py's
    Overlay.files. Raises PallocError when goast cannot be built or run; a platform goast could
    not type-check comes back with its "error" set.
    """
    funcs = sorted(set(funcs))
    files = sorted(set(files))
    base = "\0".join([_source_hash(), _tc_key(tc), _runtime_stamp(tc), _overlay_stamp(overlay), ",".join(funcs),
                      ",".join(files)])
    out_dir = cache_dir() / "goast-out"
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[tuple[str, str], dict] = {}
    todo = []
    for goos, goarch in platforms:
        key = hashlib.sha256(f"{base}\0{goos}/{goarch}".encode()).hexdigest()[:24]
        f = out_dir / f"{key}.json"
        try:
            results[(goos, goarch)] = json.loads(f.read_text())
        except (OSError, ValueError):
            todo.append((goos, goarch, f))
    if todo:
        binary = goast_binary(tc)
        jobs = [{"goos": goos, "goarch": goarch, "tool_tags": tool_tags(tc, goos, goarch),
                 "overlay": dict(overlay or {}), "funcs": funcs, "files": files, "stop": list(STOP)} for goos, goarch, _ in todo]
        req = json.dumps({"goroot": str(tc.goroot), "jobs": jobs})
        env = tc.env(None)
        try:
            r = subprocess.run([str(binary)], input=req, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise PallocError(f"goref/goast did not finish in {timeout:.0f} s") from None
        if r.returncode != 0:
            raise PallocError(f"goref/goast failed: {(r.stderr.strip().splitlines() or ['no output'])[-1]}")
        got = json.loads(r.stdout)["results"]
        for (goos, goarch, f), res in zip(todo, got):
            results[(goos, goarch)] = res
            if not res.get("error"):
                tmp = f.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(json.dumps(res))
                os.replace(tmp, f)
    return [results[p] for p in platforms]
