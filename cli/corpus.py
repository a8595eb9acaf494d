"""`palloc corpus list|replay|prune`: the failure corpus (goref/corpus.py) that fuzz and
verify-change keep every divergence in, and replay before generating anything.

Exit codes: list 0 (2 if a file cannot be read); replay 1 if a case diverges again, else 2 if a
file cannot be read or run or nothing was replayed, else 0; prune 0 (2 if a file cannot be read,
which is left in place: a bad file is never deleted, nor a case that could not be run).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from palloc.cli._args import goroot, json_option
from palloc.spec.errors import PallocError

HELP = "list, replay and prune the failure corpus that fuzz and verify-change replay first"
DESCRIPTION = (
    "Every divergence palloc fuzz and palloc verify-change find is kept once in the corpus "
    "(./palloc-corpus, or --corpus DIR, or $PALLOC_CORPUS: <goarch>/<key>.json, each a case `palloc replay` "
    "reads), and replayed on the runtime under test before anything is generated."
)


def arguments(p) -> None:
    vs = p.add_subparsers(dest="corpus_verb", metavar="ACTION")

    def common(q, runtime: bool = True):
        q.add_argument("--corpus", type=Path, default=None, help="the corpus folder (default: $PALLOC_CORPUS or ./palloc-corpus)")
        q.add_argument("--goarch", action="append", metavar="GOARCH", help="only the cases of this GOARCH (repeatable)")
        if runtime:
            q.add_argument("--goroot", type=goroot, help="the Go toolchain whose runtime replays the cases (default: as "
                           "`palloc fuzz`)")
        json_option(q)

    q = vs.add_parser("list", help="the cases kept: key, GOARCH, size, where found, the divergence's first line")
    common(q, runtime=False)
    q.set_defaults(run=run_list)
    q = vs.add_parser("replay", help="replay every case on the runtime (as fuzz does first); exit 1 if one diverges again")
    common(q)
    q.set_defaults(run=run_replay)
    q = vs.add_parser("prune", help="drop the cases that no longer diverge on the runtime they were found on "
                      "(a case verify-change found: with its recorded patch), and duplicates")
    common(q)
    q.add_argument("--dry-run", action="store_true", help="say what would be dropped, drop nothing")
    q.set_defaults(run=run_prune)
    p.set_defaults(run=lambda args: (p.print_help(), 2)[1])


def _folder(args) -> Path:
    from palloc.goref.corpus import default_dir

    return args.corpus or default_dir()


def _entries(args):
    from palloc.goref import corpus

    folder = _folder(args)
    if not folder.is_dir():
        raise PallocError(f"no corpus at {folder}: it is made by `palloc fuzz` and `palloc verify-change` when they "
                          "find a divergence; pass --corpus DIR for another")
    goarches = args.goarch or [None]
    return [e for g in goarches for e in corpus.entries(folder, g)]


def _bad(es) -> None:
    for e in es:
        print(f"palloc corpus: {e.error}", file=sys.stderr)


def run_list(args) -> int:
    es = _entries(args)
    bad = [e for e in es if e.case is None]
    if args.json:
        print(json.dumps({"corpus": str(_folder(args)), "cases": [e.to_json() for e in es]}, indent=1))
    else:
        for e in es:
            if e.case is None:
                continue
            j = e.to_json()
            src = j["source"] or "?"
            print(f"{j['key']}  {j['goarch']:8} {j['ops']:4} ops  {src}  {j['headline'] or ''}".rstrip())
        print(f"{len(es) - len(bad)} cases in {_folder(args)}" + (f", {len(bad)} unreadable" if bad else ""))
    _bad(bad)
    return 2 if bad else 0


def _runner_for(goarch: str, goroot_: str | None):
    from palloc.goref.fuzz import session

    return session(goarch, goroot=goroot_)


def run_replay(args) -> int:
    """Replays every case on the runtime under test (the toolchain's, or --goroot's)."""
    from palloc.goref import corpus

    folder = _folder(args)
    es = _entries(args)
    goarches = sorted({e.path.parent.name for e in es}) if not args.goarch else args.goarch
    rows, bad, diverged = [], [], 0
    for g in goarches:
        if not any(e.path.parent.name == g for e in es):
            continue
        from palloc.goref.fuzz import GOARCH_PLATFORM

        if g not in GOARCH_PLATFORM:
            bad += [e for e in es if e.path.parent.name == g]
            for e in bad:
                e.error = e.error or f"{e.path}: in a folder named for no GOARCH ({g}); not replayed"
            continue
        runner = _runner_for(g, args.goroot)
        rep = corpus.replay(folder, g, runner.run_case, say=None)
        bad += rep.bad
        for e, d in rep.diverged:
            diverged += 1
            rows.append({"file": str(e.path), "agree": False, "divergence": d.to_json()})
            if not args.json:
                print(f"{e.path}: diverges again: {d.headline()}")
        for e in rep.agreed:
            rows.append({"file": str(e.path), "agree": True})
            if not args.json:
                print(f"{e.path}: the model and the runtime agree")
    if args.json:
        print(json.dumps({"corpus": str(folder), "cases": rows, "unreadable": [e.error for e in bad]}, indent=1))
    _bad(bad)
    if diverged:
        return 1
    if bad or not rows:
        if not rows and not bad:
            print(f"palloc corpus: nothing to replay in {folder}", file=sys.stderr)
        return 2
    return 0


def run_prune(args) -> int:
    """Drops duplicates (the same input under two names) and the cases that agree now on the
    runtime they were found on."""
    from palloc.goref import corpus
    from palloc.goref.report import patch_overlay_of, replay_case

    es = _entries(args)
    bad = [e for e in es if e.case is None]
    seen: dict[str, Path] = {}
    drop: list[tuple[Path, str]] = []
    kept = 0
    for e in es:
        if e.case is None:
            continue
        k = corpus.key(e.case)
        if k in seen:
            drop.append((e.path, f"a duplicate of {seen[k]}"))
            continue
        seen[k] = e.path
        try:
            overlay = patch_overlay_of(e.case.patch["text"], str(e.path), args.goroot) if e.case.patch else None
            d = replay_case(e.case, args.goroot, overlay)
        except PallocError as err:
            e.error = f"{e.path}: not replayed, kept ({err})"
            bad.append(e)
            continue
        if d is None:
            on = f"the runtime patched by {e.case.patch.get('path') or 'its patch'}" if e.case.patch else "this runtime"
            drop.append((e.path, f"no longer diverges on {on}"))
        else:
            kept += 1
    for path, why in drop:
        if not args.dry_run:
            path.unlink(missing_ok=True)
        if not args.json:
            print(f"{'would drop' if args.dry_run else 'dropped'} {path}: {why}")
    if args.json:
        print(json.dumps({"dropped": [{"file": str(p), "why": w} for p, w in drop], "kept": kept,
                          "dry_run": args.dry_run, "unreadable": [e.error for e in bad]}, indent=1))
    else:
        print(f"{kept} cases still diverge and are kept; {len(drop)} {'would be ' if args.dry_run else ''}dropped")
    _bad(bad)
    return 2 if bad else 0
