"""`palloc replay FILE`: re-run a saved fuzz case on the model and the real runtime.

Exit 0 if the two sides now agree, 1 if they still diverge, 2 if the file is malformed or no
helper can be built.
"""

from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser(
        "replay",
        help="re-run a saved `palloc fuzz` case on both sides",
        description="Re-run a case written by `palloc fuzz` (its .json file) on the model and on the real "
        "runtime, comparing every result and state. Exit 0: they agree; 1: they still diverge; 2: error.",
    )
    p.add_argument("file", help="a .json case from the failures folder")
    p.add_argument("--goroot", help="GOROOT of the Go toolchain (default: as `palloc fuzz`)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=run)


def run(args) -> int:
    from palloc.goref.report import load_case, replay_case

    case = load_case(args.file)
    d = replay_case(case, args.goroot)
    if args.json:
        print(json.dumps({"file": args.file, "agree": d is None, "divergence": d.to_json() if d else None}, indent=1))
    elif d is None:
        print(f"{args.file}: the model and the runtime agree ({len(case.ops)} operations)")
    else:
        print(d.text())
    return 0 if d is None else 1
