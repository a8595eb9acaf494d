"""`palloc replay FILE`: re-run a saved fuzz case on the model and the real runtime.

Exit 0 if the two sides now agree, 1 if they still diverge, 2 if the file is malformed or no
helper can be built. A case found by `palloc verify-change` records its patch, and is replayed on
the runtime with that patch applied (`--patch P` names another, `--unpatched` none).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from palloc.cli._args import goroot, json_option
from palloc.goref.targets import GOARCH_HELP


HELP = "re-run a saved `palloc fuzz` case on both sides"
DESCRIPTION = (
    "Re-run a case written by `palloc fuzz` (its .json file) on the model and on the real "
    "runtime, comparing every result and state. Exit 0: they agree; 1: they still diverge; 2: error."
)


def arguments(p) -> None:
    p.add_argument("file", help="a .json case from the failures folder")
    p.add_argument("--goroot", type=goroot, help="GOROOT of the Go toolchain (default: as `palloc fuzz`)")
    p.add_argument("--go-test", action="store_true",
                   help="also build and run the case's Go test (<id>_test.go beside FILE, or written afresh from "
                   "FILE) against the runtime: it fails where the sides diverge")
    p.add_argument("--patch", type=Path, metavar="PATCH",
                   help="replay on the runtime with this patch applied (default: the patch the case records, "
                   "when `palloc verify-change` found it)")
    p.add_argument("--unpatched", action="store_true", help="ignore the patch the case records: replay on the toolchain as it is")
    p.add_argument("--goarch", action="append", metavar="GOARCH",
                   help="replay on these GOARCHes instead of the case's own: " + GOARCH_HELP.split(": ", 1)[1]
                   + "; each must define every operation of the case (its addresses lie in that GOARCH's heap)")
    json_option(p)


def go_test_of(case, path: Path, folder: Path) -> Path:
    """Returns the Go test written beside the case file, or writes one from the case in folder."""
    from palloc.goref.report import case_id, go_test_source, model_run
    from palloc.goref.files import write_atomic

    beside = path.with_name(path.stem + "_test.go")
    if beside.is_file():
        return beside
    return write_atomic(folder / f"{case_id(case)}_test.go", go_test_source(case, case_id(case), model_run(case)))


def require_text(path: str) -> None:
    """Raises PallocError unless the file at path is UTF-8 text (a missing one is load_case's to say)."""
    from palloc.spec.errors import PallocError

    try:
        Path(path).read_bytes().decode()
    except UnicodeDecodeError as e:
        raise PallocError(f"{path} is not a palloc fuzz case: not UTF-8 text (byte {e.start}); "
                          "pass a .json file written by `palloc fuzz`") from None
    except OSError:
        pass


def require_defined(case, path: str) -> None:
    """Raises PallocError at a case's first operation that the model calls undefined and the
    runtime does not check either: what the runtime does there is not palloc's to compare."""
    from palloc.goref.report import model_run
    from palloc.spec.errors import PallocError

    for k, o in enumerate(model_run(case)):
        if o.crash and o.crash[0] == "undefined" and o.throw is None:
            what = f"operation {k - 1} ({case.ops[k - 1]!r})" if k else "its initial heap"
            raise PallocError(f"{path}: {what} is undefined in the runtime ({o.crash[1]}); "
                              "palloc compares defined operations only: remove it")


def run(args) -> int:
    require_text(args.file)
    from palloc.goref.report import load_case, patch_overlay_of, replay_case
    from palloc.spec.errors import PallocError

    case = load_case(args.file)
    if args.goarch:
        return _replay_on(case, args)
    require_defined(case, args.file)
    overlay, patch_from = None, None
    if args.patch is not None:
        try:
            text = args.patch.read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise PallocError(f"cannot read patch {args.patch}: {e}") from None
        overlay, patch_from = patch_overlay_of(text, str(args.patch), args.goroot), str(args.patch)
    elif case.patch is not None and not args.unpatched:
        where = case.patch.get("path") or "the case"
        overlay, patch_from = patch_overlay_of(case.patch["text"], f"{args.file} (patch {where})", args.goroot), where
    if patch_from and not args.json:
        print(f"palloc replay: on the runtime patched by {patch_from}", file=sys.stderr)
    d = replay_case(case, args.goroot, overlay)
    out = {"file": args.file, "patch": patch_from, "agree": d is None, "divergence": d.to_json() if d else None}
    if not args.json:  # the verdict first: a Go test that cannot run must not hide it
        if d is None:
            print(f"{args.file}: the model and the runtime agree ({len(case.ops)} operations)")
        else:
            print(d.text())
        sys.stdout.flush()
    code = 0 if d is None else 1
    if args.go_test:
        from palloc.goref.gotest import run_go_test

        try:
            with tempfile.TemporaryDirectory(prefix="palloc-replay-") as tmp:
                gt = run_go_test(go_test_of(case, Path(args.file), Path(tmp)), case.goarch, args.goroot, overlay)
        except PallocError as e:
            out["go_test"] = {"error": str(e)}
            if not args.json:
                print(f"palloc replay: {e}", file=sys.stderr)
            code = 2
        else:
            out["go_test"] = gt.to_json()
            if not args.json:
                print(f"Go test {gt.name}: {gt.said()}" + "".join(f"\n  {e}" for e in gt.errors[:6]))
    if args.json:
        print(json.dumps(out, indent=1))
    return code


def _replay_on(case, args) -> int:
    """Replays the case on every GOARCH --goarch names (exit 1 if it diverges on any)."""
    import dataclasses

    from palloc.goref import ops as O
    from palloc.goref.fuzz import goarch_platform
    from palloc.goref.report import replay_case
    from palloc.goref.targets import parse_goarches, require_runnable
    from palloc.spec.errors import PallocError

    if args.patch is not None or (case.patch is not None and not args.unpatched) or args.go_test:
        raise PallocError("--goarch replays the case on the unpatched toolchain without its Go test; "
                          "leave out --patch and --go-test, and pass --unpatched for a case verify-change found")
    goarches = parse_goarches(args.goarch, [case.goarch])
    require_runnable(goarches)
    rows, code = [], 0
    for g in goarches:
        p = goarch_platform(g, case.go_version)
        for i, op in enumerate(case.ops):
            why = O.undefined_reason(op, p)
            if why:
                raise PallocError(f"{args.file}: operation {i} ({op!r}) is undefined on {g}: {why}; replay it on "
                                  f"a GOARCH whose heap holds the case's addresses")
        c = dataclasses.replace(case, goarch=g, host=None)  # the page sizes of that GOARCH's helper
        require_defined(c, args.file)
        d = replay_case(c, args.goroot, None)
        rows.append({"goarch": g, "agree": d is None, "divergence": d.to_json() if d else None})
        code = max(code, 0 if d is None else 1)
        if not args.json:
            print(f"{args.file} on {g}: " + ("the model and the runtime agree" if d is None else d.text()))
    if args.json:
        print(json.dumps({"file": args.file, "goarches": rows}, indent=1))
    return code
