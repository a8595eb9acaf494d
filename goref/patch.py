"""Apply a proposed runtime patch to copies of a GOROOT's runtime files, as a `go build -overlay`.

A patch is a git-style unified diff whose paths are GOROOT-relative (`a/src/runtime/mpagealloc.go`,
as `git diff` in a Go checkout writes it). The user's GOROOT is never written to: the files the patch
touches are copied into a scratch directory, patched there, and the whole directory is renamed into
place only once every hunk has applied, so no half-patched tree is ever visible. The result is an
`Overlay`: a mapping from GOROOT-relative runtime paths to the patched copies, which the helper build
(goref/build.py, `extra_overlay`) and the runtime's own tests (goref/baseline.py) both consume.

The diff is applied by `git apply`, not by code of ours: git is on every Go developer's machine, it
reads exactly the format `git diff` writes (including new and deleted files), it refuses a hunk whose
context does not match exactly (GNU patch applies with fuzz by default, which could land a mutant on
the wrong line and still report success), and it checks the whole patch before writing anything.
Outside a git repository it runs as a plain patch applier, which is how it is used here.

A modified Go tree (`--goroot DIR`) is turned into an overlay too: the runtime files that differ from
the base toolchain's.
"""

from __future__ import annotations

import dataclasses
import filecmp
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from palloc.spec.errors import PallocError

RUNTIME_DIR = "src/runtime"
# The runtime package's own files: Go source (tests included) and assembly, directly in src/runtime/.
# Subdirectories are other packages (internal/..., race/, cgo/); patches to them are not in scope.
RUNTIME_FILE = re.compile(r"^src/runtime/[A-Za-z0-9_.\-]+\.(go|s|h)$")

_DIFF_GIT = re.compile(r"^diff --git a/(\S+) b/(\S+)$")
_OLD = re.compile(r"^--- (?:(a/)(\S+)|(/dev/null))")
_NEW = re.compile(r"^\+\+\+ (?:(b/)(\S+)|(/dev/null))")
# git's extended headers that name the old or new path themselves (a rename or copy).
_RENAME = re.compile(r"^(rename|copy) (from|to) (\S+)$")
PREFIX_FIX = "make the diff with `git diff` in a Go checkout, or write the paths as a/src/runtime/... and b/src/runtime/..."
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclasses.dataclass(frozen=True)
class Overlay:
    """Replaces runtime files by patched copies: `files` maps GOROOT-relative paths to absolute files.

    A value of "" means the patch deletes the file (go's overlay convention). `digest` names the
    patched content, so builds keyed on it are rebuilt exactly when the patch changes.
    """

    goroot: Path
    files: dict[str, str]
    digest: str
    directory: Path | None = None

    def go_overlay_json(self) -> dict:
        """Returns the `-overlay` JSON document: absolute GOROOT paths to replacement files."""
        return {"Replace": {str(self.goroot / rel): dst for rel, dst in sorted(self.files.items())}}

    def write_json(self, path: Path) -> Path:
        """Writes the `-overlay` JSON document to path (atomically) and returns path."""
        _atomic_write(Path(path), json.dumps(self.go_overlay_json(), indent=1) + "\n")
        return Path(path)

    def describe(self) -> str:
        """Returns a one-line summary of the patched files."""
        return ", ".join(f"{rel}{' (deleted)' if not dst else ''}" for rel, dst in sorted(self.files.items()))


@dataclasses.dataclass(frozen=True)
class FilePatch:
    """One file's part of a diff: its GOROOT-relative paths and the old start line of each hunk."""

    old: str | None  # None for a new file
    new: str | None  # None for a deleted file
    hunk_starts: tuple[int, ...]

    @property
    def path(self) -> str:
        return self.new or self.old or ""


def parse_files(text: str, source: str = "patch") -> list[FilePatch]:
    """Returns the files a unified diff touches, with each hunk's old start line, in diff order.

    This reads only the headers, to check scope and to name hunks in errors; applying is git's job.
    Raises PallocError for an empty or malformed diff.
    """
    if not text.strip():
        raise PallocError(f"{source}: empty diff; pass a patch made with `git diff` in a Go checkout")
    files: list[FilePatch] = []
    old = new = None
    starts: list[int] = []
    in_file = False
    lines = text.splitlines()
    i = 0

    def close():
        nonlocal in_file, starts
        if in_file:
            if old is None and new is None:
                raise PallocError(f"{source}: malformed diff: a file section has no ---/+++ header")
            files.append(FilePatch(old, new, tuple(starts)))
        in_file, starts = False, []

    while i < len(lines):
        line = lines[i]
        m = _DIFF_GIT.match(line)
        if m:
            close()
            in_file, old, new = True, m.group(1), m.group(2)
        elif line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            if not in_file or starts:  # a plain `diff -u` has no `diff --git` line
                close()
                in_file = True
            mo, mn = _OLD.match(line), _NEW.match(lines[i + 1])
            if not mo or not mn:
                # git apply strips the first path component: without a/ b/ it would strip src/.
                raise PallocError(f"{source}: the file header at line {i + 1} has no a/ or b/ prefix "
                                  f"({line[4:60].strip()}); {PREFIX_FIX}")
            old, new = mo.group(2), mn.group(2)
            i += 1
        elif in_file and not starts and (r := _RENAME.match(line)):
            if r.group(2) == "from":
                old = r.group(3)
            else:
                new = r.group(3)
        elif line.startswith("@@"):
            h = _HUNK.match(line)
            if not h or not in_file:
                raise PallocError(f"{source}: malformed diff: bad hunk header at line {i + 1}: {line[:60]}")
            starts.append(int(h.group(1)))
            # Skip the hunk body by its counts so that a body line like "--- x" is not a header.
            want_old = int(h.group(2)) if h.group(2) is not None else 1
            want_new = int(h.group(4)) if h.group(4) is not None else 1
            j = i + 1
            while (want_old > 0 or want_new > 0) and j < len(lines):
                body = lines[j]
                tag = body[:1]
                if tag == " " or body == "":
                    want_old, want_new = want_old - 1, want_new - 1
                elif tag == "-":
                    want_old -= 1
                elif tag == "+":
                    want_new -= 1
                elif tag == "\\":
                    pass
                else:
                    break
                j += 1
            if want_old != 0 or want_new != 0:
                raise PallocError(
                    f"{source}: malformed diff: hunk {len(starts)} of {old or new} (line {i + 1}) "
                    "is shorter or longer than its @@ header says"
                )
            i = j
            continue
        i += 1
    close()
    if not files:
        raise PallocError(f"{source}: malformed diff: no file headers (---/+++) found")
    return files


def check_scope(files: list[FilePatch], source: str = "patch") -> None:
    """Raises PallocError unless every touched file is a runtime-package file under src/runtime/."""
    for f in files:
        for p in (f.old, f.new):
            if p is not None and not RUNTIME_FILE.match(p):
                raise PallocError(
                    f"{source}: touches {p}, outside the runtime package (only src/runtime/*.go|s|h); "
                    "make the diff in a Go checkout so paths read a/src/runtime/..."
                )


def _git() -> str:
    git = shutil.which("git")
    if not git:
        raise PallocError("git is needed to apply patches (git apply); install git")
    return git


def _failing_hunk(stderr: str, files: list[FilePatch]) -> str:
    """Returns 'FILE hunk N (old line L)' for git's 'patch failed: FILE:L', else git's own words."""
    m = re.search(r"patch failed: (\S+):(\d+)", stderr)
    if m:
        path, line = m.group(1), int(m.group(2))
        for f in files:
            if f.path == path or f.old == path:
                if line in f.hunk_starts:
                    return f"{path} hunk {f.hunk_starts.index(line) + 1} (at old line {line})"
        return f"{path} hunk at old line {line}"
    first = next((l for l in stderr.splitlines() if l.startswith("error:")), stderr.strip().splitlines()[0] if stderr.strip() else "")
    return first.removeprefix("error: ").strip()


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _publish(scratch: Path, dest: Path) -> None:
    """Renames the finished scratch directory to dest; if another process got there first, keeps theirs.

    Both hold the same content (dest is named by the patch's digest), so either copy is right.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(scratch, dest)
    except OSError:
        if not dest.is_dir():
            raise
        shutil.rmtree(scratch, ignore_errors=True)


def apply_patch_text(text: str, goroot: Path, out_root: Path, source: str = "patch") -> Overlay:
    """Applies a git-style diff to copies of goroot's runtime files under out_root; returns the overlay.

    The copies land in out_root/<digest>/ (reused when present: same patch, same GOROOT, same result).
    goroot is only read. On any failure nothing is left under out_root but what was there before.
    Raises PallocError (one line, naming the file and hunk) if the diff is empty or malformed, touches
    files outside the runtime package, or does not apply.
    """
    goroot = Path(goroot).resolve()
    files = parse_files(text, source)
    check_scope(files, source)
    for f in files:
        if f.old is not None and not (goroot / f.old).is_file():
            raise PallocError(f"{source}: {f.old} does not exist in {goroot}; is this the right Go version?")
    base_hash = hashlib.sha256()
    for f in sorted({f.old for f in files if f.old}):
        base_hash.update(f.encode() + b"\0" + (goroot / f).read_bytes())
    digest = hashlib.sha256(text.encode() + b"\0" + base_hash.digest()).hexdigest()[:20]
    dest = Path(out_root) / digest
    if dest.is_dir():
        return _overlay_of(files, goroot, dest, digest)
    Path(out_root).mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".patching-", dir=out_root))
    try:
        for f in files:
            if f.old is not None:
                (scratch / f.old).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(goroot / f.old, scratch / f.old)
        patch_file = scratch / ".patch"
        patch_file.write_text(text if text.endswith("\n") else text + "\n")
        # --check first: git apply is atomic per run, but checking separately gives a clean message.
        for extra in (["--check"], []):
            r = subprocess.run(
                [_git(), "apply", "--whitespace=nowarn", *extra, ".patch"],
                cwd=scratch, capture_output=True, text=True,
                env={**os.environ, "GIT_CEILING_DIRECTORIES": str(scratch.parent)},
            )
            if r.returncode != 0:
                if "corrupt patch" in r.stderr or "No valid patches" in r.stderr or "garbage" in r.stderr:
                    raise PallocError(f"{source}: malformed diff: {r.stderr.strip().splitlines()[0].removeprefix('error: ')}")
                raise PallocError(f"{source}: does not apply: {_failing_hunk(r.stderr, files)}")
        patch_file.unlink()
        _publish(scratch, dest)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return _overlay_of(files, goroot, dest, digest)


def _overlay_of(files: list[FilePatch], goroot: Path, dest: Path, digest: str) -> Overlay:
    mapping: dict[str, str] = {}
    for f in files:
        if f.new is None:
            mapping[f.old] = ""
        else:
            mapping[f.new] = str(dest / f.new)
            if f.old is not None and f.old != f.new:
                mapping[f.old] = ""  # a rename removes the old name
    return Overlay(goroot=goroot, files=mapping, digest=digest, directory=dest)


def apply_patch(patch: Path, goroot: Path, out_root: Path) -> Overlay:
    """Applies the patch file to copies of goroot's runtime files; see apply_patch_text."""
    patch = Path(patch)
    try:
        text = patch.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise PallocError(f"cannot read patch {patch}: {e}") from None
    return apply_patch_text(text, goroot, out_root, source=str(patch))


def overlay_from_goroot(modified: Path, base_goroot: Path) -> Overlay:
    """Returns the overlay that turns base_goroot's runtime into modified's: the differing runtime files.

    Files of the runtime package (src/runtime/*.go|s|h) that differ or are new map to modified's copy;
    files missing from modified map to "" (deleted). modified is only read. Raises PallocError if
    modified has no src/runtime or is identical to the base.
    """
    modified, base_goroot = Path(modified).resolve(), Path(base_goroot).resolve()
    mdir, bdir = modified / RUNTIME_DIR, base_goroot / RUNTIME_DIR
    if not mdir.is_dir():
        raise PallocError(f"--goroot {modified}: no {RUNTIME_DIR} there; point it at a Go tree's root")
    names = lambda d: {p.name for p in d.iterdir() if p.is_file() and RUNTIME_FILE.match(f"{RUNTIME_DIR}/{p.name}")}
    mapping: dict[str, str] = {}
    h = hashlib.sha256()
    for name in sorted(names(mdir) | names(bdir)):
        rel = f"{RUNTIME_DIR}/{name}"
        m, b = mdir / name, bdir / name
        if not m.exists():
            mapping[rel] = ""
            h.update(rel.encode() + b"\0deleted\0")
        elif not b.exists() or not filecmp.cmp(m, b, shallow=False):
            mapping[rel] = str(m)
            h.update(rel.encode() + b"\0" + m.read_bytes())
    if not mapping:
        raise PallocError(f"--goroot {modified}: its runtime is identical to {base_goroot}'s; nothing to verify")
    return Overlay(goroot=base_goroot, files=mapping, digest=h.hexdigest()[:20], directory=None)


def unified_diff(goroot: Path, rel: str, new_text: str) -> str:
    """Returns a git-style diff (a/ b/ paths, GOROOT-relative) turning goroot/rel into new_text.

    Used to write mutant patches; made by `git diff --no-index` so it applies with `git apply`.
    """
    goroot = Path(goroot)
    with tempfile.TemporaryDirectory(prefix="palloc-diff-") as d:
        a, b = Path(d) / "a" / rel, Path(d) / "b" / rel
        a.parent.mkdir(parents=True)
        b.parent.mkdir(parents=True)
        shutil.copyfile(goroot / rel, a)
        b.write_text(new_text)
        r = subprocess.run(
            [_git(), "diff", "--no-index", "--no-color", "--no-prefix", "-U3", f"a/{rel}", f"b/{rel}"],
            cwd=d, capture_output=True, text=True,
        )
    if r.returncode not in (0, 1):
        raise PallocError(f"git diff failed for {rel}: {r.stderr.strip()}")
    out = r.stdout
    # --no-prefix keeps our a/ and b/ directories as the prefixes; drop the index line (blob ids of
    # temp files, meaningless to readers) so patches are stable.
    return "".join(l + "\n" for l in out.splitlines() if not l.startswith("index "))
