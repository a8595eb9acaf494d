"""`palloc show CASE`: draw a saved case's state at any step, model and runtime side by side.

Replays the case (its .json file) on the model and, through the Go helper, on the real runtime
(patched as the case records, as `palloc replay` does) up to the step, and draws both states
(goref/picture.py): in the terminal as text, with --html as one self-contained HTML file.
Exit 0: the two sides agree up to the step; 1: they differ by then; 2: an error (a bad file, a
step outside the case, no helper: --model-only draws the model alone, exit 0).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from palloc.cli._args import goroot
from palloc.spec.errors import PallocError


HELP = "draw a saved case's state at a step: chunk bitmaps, summaries, searchAddr, side by side"
DESCRIPTION = (
    "Replay a case written by `palloc fuzz`, `verify-change` or `versions` on the model and the "
    "real runtime up to a step and draw both states: every touched chunk as rows of 64 pages (# allocated, "
    ". free, s scavenged; ^ under a page where the sides differ, @ at searchAddr), the page caches, the "
    "summary tree around the differing entry, each entry's (start, max, end), and the operations with the "
    "step that diverged. --html writes the same as one self-contained HTML file (inline SVG, nothing "
    "fetched). Exit 0: the sides agree up to the step; 1: they differ; 2: error."
)


def arguments(p) -> None:
    p.add_argument("case", help="a .json case from the failures folder")
    p.add_argument("--step", type=int, default=None, metavar="N",
                   help="draw the state after operation N (0 is the first; -1 the initial heap; default: the step "
                   "that diverged, else the last)")
    p.add_argument("--html", type=Path, metavar="OUT", help="also write the picture as an HTML file to OUT")
    p.add_argument("--json", action="store_true", help="the picture's content as JSON (rows as text, differing pages "
                   "as runs, the summary entries shown)")
    p.add_argument("--model-only", action="store_true", help="draw the model's side alone (no Go toolchain needed)")
    p.add_argument("--goroot", type=goroot, help="GOROOT of the Go toolchain (default: as `palloc fuzz`)")
    p.add_argument("--unpatched", action="store_true",
                   help="ignore the patch the case records: run the runtime side on the toolchain as it is")


def _load(path: str):
    """Returns the case a file holds, with the divergence it records."""
    from palloc.cli.replay import require_defined, require_text
    from palloc.goref.report import divergence_from_json, load_case

    require_text(path)
    case = load_case(path)
    require_defined(case, path)
    try:
        case.divergence = divergence_from_json(json.loads(Path(path).read_text()).get("divergence"))
    except (ValueError, KeyError, TypeError) as e:
        raise PallocError(f"{path}: its divergence record is malformed ({e}); remove it or rewrite the case") from None
    return case


def _runner(case, args):
    """Returns (a Lockstep of the case's model against its runtime, a context ending its helper)."""
    import contextlib

    from palloc.goref.report import patch_overlay_of

    overlay = None
    if case.patch is not None and not args.unpatched:
        where = case.patch.get("path") or "the case"
        overlay = patch_overlay_of(case.patch["text"], f"{args.case} (patch {where})", args.goroot)
    if not overlay:
        from palloc.goref.fuzz import session

        r = session(case.goarch, goroot=args.goroot, variant=case.model_variant, go_version=case.go_version)
        return r, contextlib.nullcontext()
    from palloc.goref.broken import model_variant
    from palloc.goref.driver import GoHelper
    from palloc.goref.fuzz import Lockstep, goarch_platform
    from palloc.goref.go_side import GoSide
    from palloc.goref.toolchain import find_toolchain

    tc = find_toolchain(args.goroot)
    p = goarch_platform(case.goarch, tc.version)
    h = GoHelper(toolchain=tc, goarch=case.goarch, extra_overlay=dict(overlay))
    fac = model_variant(case.model_variant).factory() if case.model_variant else None
    return Lockstep(p, GoSide(p, h), fac, host=case.host, goarch=case.goarch, go_version=tc.version), h


def run(args) -> int:
    from palloc.goref import picture
    from palloc.goref.compare import compare_runs
    from palloc.goref.files import write_atomic
    from palloc.goref.model_side import ModelSide
    from palloc.goref.report import model_run

    case = _load(args.case)
    n = len(case.ops)
    step = args.step if args.step is not None else picture.divergence_step(case.divergence, n)
    step = n - 1 if step is None else step
    if not -1 <= step < n:
        raise PallocError(f"--step {step} is not in {args.case}: its operations are 0 to {n - 1} (-1: the initial heap)")
    upto = dataclasses.replace(case, ops=case.ops[:step + 1])
    if args.model_only:
        model_outs, runtime_outs, d = model_run(upto), None, case.divergence
        code = 0
    else:
        runner, ctx = _runner(case, args)
        with ctx:
            model_outs = ModelSide(runner.p, runner.model_factory, runner.host).run(upto.init, upto.ops)
            runtime_outs = runner.go_run(upto.init, upto.ops)
            d = runner._invariants_on_replay(upto) or compare_runs(runner.p, [None] + upto.ops, model_outs, runtime_outs)
        if d is not None and d.kind != "invariant":
            d.step, d.op = (d.step - 1, d.op) if d.step > 0 else (0, None)
        code = 0 if d is None else 1
    pic = picture.case_picture(case, model_outs, runtime_outs, step)
    pic.divergence, pic.diverged = d, picture.divergence_step(d, n)
    if args.html is not None:
        try:
            write_atomic(args.html, picture.html_page(pic))
        except OSError as e:
            raise PallocError(f"cannot write {args.html} ({e.strerror or e}); pass --html with a file in a folder "
                              "you can write to") from None
    if args.json:
        out = picture.to_json(pic)
        out.update({"case": args.case, "agree": None if args.model_only else d is None,
                    "html": str(args.html) if args.html else None})
        print(json.dumps(out, indent=1))
    else:
        sys.stdout.write(picture.text(pic))
        if args.html is not None:
            print(f"palloc show: the picture is in {args.html} (open it in a browser)", file=sys.stderr)
    return code
