"""`palloc contracts`: check the CrossHair contracts on the model's pure functions (proofs/contracts.py)."""

from __future__ import annotations

import json

from palloc.cli._args import json_option


HELP = "run CrossHair on the pre:/post: contracts of the model's pure functions"
DESCRIPTION = (
    "Run CrossHair on every check_* contract in proofs/contracts.py. Grades: confirmed "
    "(every path explored), could not refute (no counterexample within the timeout), counterexample, "
    "error. Exit 0 when every contract is confirmed or not refuted and every broken variant is refuted, "
    "1 otherwise."
)


def arguments(p) -> None:
    p.add_argument("--only", metavar="SUBSTRING", help="only checks whose name contains this")
    p.add_argument("--per-condition-timeout", type=float, default=1.5, help="seconds (default %(default)s)")
    json_option(p)


def run(args) -> int:
    import importlib

    importlib.import_module("crosshair")  # the checks run in a child: a missing [contracts] extra is said here
    from palloc.proofs import contracts
    from palloc.spec.errors import PallocError

    names = [n for n in contracts.CHECKS if not args.only or args.only in n]
    if not names:
        raise PallocError(f"no contract matches {args.only!r}; names are in proofs/contracts.py")
    rows, ok = [], True
    try:
        for row in contracts.run_checks(names, args.per_condition_timeout):
            n, grade, detail = row["check"], row["grade"], row["detail"]
            good = grade in contracts.expected_grade(n)
            ok &= good
            rows.append({**row, "ok": good})
            if not args.json:
                print(f"{grade:17} {row['seconds']:6.2f}s  {n}{'' if good else '  <-- UNEXPECTED'}")
                if detail and grade != contracts.NOT_REFUTED:
                    print(f"      {detail}")
    except PallocError:
        if args.json:  # the rows found so far are kept
            print(json.dumps({"ok": False, "results": rows}, indent=1))
        raise
    if args.json:
        print(json.dumps({"ok": ok, "results": rows}, indent=1))
    return 0 if ok else 1
