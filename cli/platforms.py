"""`palloc platforms`: the page allocator's constants on every platform, derived and checked."""

from __future__ import annotations

import json

from palloc.cli._args import json_option
from palloc.spec import constants


# HELP, DESCRIPTION and arguments(p) as cli/main.py wants of every verb: alike by design.
HELP = "print the page allocator's constants for each platform"
DESCRIPTION = (
    "Print every platform's page-allocator constants, derived from spec/platforms.toml "
    "the way the runtime derives them and checked with the runtime's own conditions."
)


def arguments(p) -> None:
    p.add_argument("--platform", help="only this GOOS/GOARCH (default: all)")
    p.add_argument("--go-version", default=constants.DEFAULT_GO_VERSION, help="Go version (default %(default)s)")
    json_option(p)


def run(args) -> int:
    names = [args.platform] if args.platform else constants.platform_names()
    rows = [constants.platform(n, args.go_version).as_dict() for n in names]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'platform':16} {'addrBits':>8} {'arenaBaseOffset':>18} {'levels':>6} {'levelBits':16} {'chunk':>5} {'maxPacked':>9}")
    for r in rows:
        print(
            f"{r['name']:16} {r['heapAddrBits']:8} {r['arenaBaseOffset']:#18x} {r['summaryLevels']:6} "
            f"{','.join(map(str, r['levelBits'])):16} {r['pallocChunkPages']:5} {r['maxPackedValue']:9}"
        )
    return 0
