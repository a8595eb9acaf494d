"""The failure corpus: every divergent case kept, once, and replayed before anything is generated.

Like Go's `testdata/fuzz/FuzzX/` (and Hypothesis' example database), the corpus is a folder of
inputs that once made the two sides differ. It lives in the working directory, `./palloc-corpus/`
beside `./palloc-failures/` (a project can commit it, as Go's corpus is committed), or where
`--corpus DIR` or `$PALLOC_CORPUS` says. Layout: `<goarch>/<key>.json`, one case a file, the
case format of the failures folder (`palloc-fuzz-case/1`, so `palloc replay` reads a corpus file
as is) with a "corpus" record of where and when it was found. The key hashes the input only (the
GOARCH, the initial heap and the operations), so the same input found again, by another worker,
campaign or mutant, is not kept twice.

`palloc fuzz` and `palloc verify-change` replay the corpus of their GOARCH on the runtime under
test before generating anything: a case that diverges again is that run's divergence, at once.
`palloc corpus list|replay|prune` look after it (cli/corpus.py). Cases found against a seeded
broken model are not kept: they say nothing about a runtime.

Mirrors no Go file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from palloc.spec.errors import PallocError

DEFAULT_DIR = "palloc-corpus"


def default_dir() -> Path:
    """Returns the corpus folder: $PALLOC_CORPUS, else ./palloc-corpus."""
    return Path(os.environ.get("PALLOC_CORPUS") or DEFAULT_DIR)


def key(case) -> str:
    """Returns the corpus key of a case: a hash of its GOARCH, initial heap and operations."""
    d = case.to_json()
    body = json.dumps({k: d.get(k) for k in ("goarch", "init", "ops")}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def path_of(folder: str | Path, case) -> Path:
    return Path(folder) / case.goarch / f"{key(case)}.json"


def add(folder: str | Path, case, source: str) -> Path | None:
    """Keeps a divergent case in the corpus; returns its file, or None when it was kept already
    (same key) or is a broken model's. Written to a temporary file and renamed."""
    from palloc.goref.files import write_atomic

    if case.model_variant:
        return None
    path = path_of(folder, case)
    if path.exists():
        return None
    d = case.to_json()
    d["corpus"] = {"key": key(case), "source": source, "found": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, json.dumps(d, indent=1) + "\n")


@dataclasses.dataclass
class Entry:
    """One corpus file: the case (None if the file cannot be read as one, `error` says why)."""

    path: Path
    case: Any = None
    error: str | None = None
    meta: dict = dataclasses.field(default_factory=dict)
    headline: str | None = None

    def to_json(self) -> dict:
        out = {"file": str(self.path), "key": self.path.stem, "error": self.error, "headline": self.headline}
        if self.case is not None:
            out.update(goarch=self.case.goarch, go_version=self.case.go_version, ops=len(self.case.ops),
                       patch=(self.case.patch or {}).get("path") if self.case.patch else None)
        out.update(source=self.meta.get("source"), found=self.meta.get("found"))
        return out


def entries(folder: str | Path, goarch: str | None = None) -> Iterator[Entry]:
    """Yields every corpus file (of goarch, if given), in a stable order; an unreadable one is
    yielded with its error, never raised, so one bad file stops no other."""
    from palloc.goref.fuzz import Case

    root = Path(folder)
    dirs = [root / goarch] if goarch else sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    for d in dirs:
        for path in sorted(d.glob("*.json")) if d.is_dir() else ():
            e = Entry(path)
            try:
                raw = json.loads(path.read_text())
                e.case = Case.from_json(raw)
                e.meta = raw.get("corpus") or {}
                e.headline = ((raw.get("divergence") or {}).get("lines") or [None])[0]
            except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as err:
                msg = str(err).splitlines()[0] if str(err) else type(err).__name__
                what = msg if msg.startswith("not a palloc") else f"not a palloc fuzz case ({msg})"
                e.case, e.error = None, f"{path}: {what}"
            yield e


@dataclasses.dataclass
class Replayed:
    """The replay of a corpus: the cases that diverged again (entry, divergence), the ones that
    agree now, and the files that could not be read or run."""

    diverged: list[tuple[Entry, Any]] = dataclasses.field(default_factory=list)
    agreed: list[Entry] = dataclasses.field(default_factory=list)
    bad: list[Entry] = dataclasses.field(default_factory=list)

    @property
    def replayed(self) -> int:
        return len(self.diverged) + len(self.agreed)


def replay(folder: str | Path, goarch: str, run: Callable[[Any], Any], stop_at_first: bool = False,
           say: Callable[[str], None] | None = None) -> Replayed:
    """Runs every corpus case of goarch through run(case) -> divergence or None (a runner's
    run_case on the runtime under test). A file that cannot be read, or a case that cannot be run
    here, is reported through say (one line) and the others still run."""
    out = Replayed()
    for e in entries(folder, goarch):
        if e.case is None:
            out.bad.append(e)
            if say:
                say(e.error)
            continue
        try:
            d = run(e.case)
        except PallocError as err:
            e.error = f"{e.path}: {err}"
            out.bad.append(e)
            if say:
                say(e.error)
            continue
        if d is None:
            out.agreed.append(e)
        else:
            out.diverged.append((e, d))
            if stop_at_first:
                break
    return out


def replay_first(folder: str | Path | None, runner, say: Callable[[str], None] | None = None):
    """Replays the corpus of runner's GOARCH on runner before a campaign; returns the first case
    that diverges again (a goref.fuzz.Case with its divergence, shrunk no further: it was shrunk
    when found) and the Replayed record, or (None, Replayed)."""
    import dataclasses as dc

    if folder is None or not (Path(folder) / runner.goarch).is_dir():
        return None, Replayed()
    rep = replay(folder, runner.goarch, runner.run_case, stop_at_first=True, say=say)
    if not rep.diverged:
        return None, rep
    e, d = rep.diverged[0]
    case = dc.replace(e.case, divergence=d, host=runner.host, go_version=runner.go_version)
    return case, rep
