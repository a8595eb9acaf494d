"""Files palloc writes for its users (failure cases, reports, result tables): all or nothing.

Mirrors no Go file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: str | Path, text: str) -> Path:
    """Writes text to path through a temporary file in the same folder and os.replace, so a
    reader (or a crash, or Ctrl-C) never meets a half-written file; returns the path."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path
