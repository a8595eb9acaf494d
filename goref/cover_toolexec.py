"""A `go test -toolexec` shim that makes a coverage build of a *patched* runtime cover the patch.

The go command hands the cover tool each covered file by its path in GOROOT, not by the overlay's
replacement (cmd/go/internal/work/exec.go: `sourceFile = filepath.Join(p.Dir, file)`, no
fsys.Actual; golang/go#73802, open and still so in Go 1.27.3). A `-cover -coverpkg=runtime -overlay`
build of a patched runtime therefore instruments, and runs, the *unpatched* file: verify-change would
test the stock runtime. This shim runs every tool unchanged except `cover`, whose input paths that the
overlay replaces it swaps for the replacement files (goref/build.py passes it for such builds only).

Usage (by the go command): python -m palloc.goref.cover_toolexec OVERLAY.json TOOL ARGS...
Mirrors no Go file.
"""

from __future__ import annotations

import json
import os
import sys


def swapped(overlay: dict, tool: str, args: list[str]) -> list[str]:
    """Returns args with each path the overlay replaces swapped for its replacement, for the
    cover tool; args unchanged for any other tool (or a deleted file, mapped to "")."""
    if not _is_cover(tool):
        return args
    repl = overlay.get("Replace") or {}
    return [repl.get(a) or a for a in args]


def main() -> None:
    overlay_path, tool, *args = sys.argv[1:]
    if _is_cover(tool) and args == ["-V=full"]:
        # The go command keys a covered package's build on this line (exec.go: "cover %q %q",
        # toolID("cover")): marked, no GOCACHE entry the unshimmed cover made is ever reused.
        import subprocess

        r = subprocess.run([tool, *args], capture_output=True, text=True)
        sys.stderr.write(r.stderr)
        sys.stdout.write(r.stdout.rstrip("\n") + " palloc-cover-overlay-shim\n")
        sys.exit(r.returncode)
    with open(overlay_path) as f:
        overlay = json.load(f)
    os.execv(tool, [tool] + swapped(overlay, tool, args))


def _is_cover(tool: str) -> bool:
    return os.path.basename(tool).split(".")[0] == "cover"


if __name__ == "__main__":
    main()
