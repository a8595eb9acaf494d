"""Files palloc writes for its users (failure cases, reports, result tables): all or nothing.

Mirrors no Go file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from palloc.spec.errors import PallocError


def write_atomic(path: str | Path, text: str) -> Path:
    """Writes text to path through a temporary file in the same folder and os.replace, so a
    reader (or a crash, or Ctrl-C) never meets a half-written file; returns the path."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 would hide cases from the rest of a team
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


def _umask() -> int:
    """Returns the process's umask (only settable, so set and put back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def require_writable_dir(path: str | Path, fix: str) -> Path:
    """Returns path once a file has been written and removed there; raises PallocError naming the
    folder, why it is unwritable and `fix` otherwise. Folders made for the check are removed again,
    so a run that writes nothing leaves nothing.

    A real write, not os.access: root passes access() on a read-only mount or in /sys.
    """
    path = Path(path)
    made = [a for a in (path, *path.parents) if not a.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise PallocError(f"cannot write to {path} ({e.strerror or e}); {fix}") from None
    finally:
        for d in made:  # deepest first
            try:
                d.rmdir()
            except OSError:
                break
    return path
