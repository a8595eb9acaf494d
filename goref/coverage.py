"""Coverage of the runtime's own allocator code, counted by Go in the real runtime.

The helper can be built with Go's coverage instrumentation of package runtime (`go test -c -cover
-covermode=count -coverpkg=runtime`, goref/build.py `coverage=True`): the counters work in the
runtime (FINDINGS.md). Counting alone would mix two heaps: the helper process's own Go heap
runs the same mpagealloc.go code as palloc's test allocators, all the time (a helper that only
starts and exits runs 122 of mpagealloc.go's 190 blocks). So the overlay (palloc_server_test.go)
attributes: run with PALLOC_COVER=1 and GOMAXPROCS=1, it snapshots the counters around each call
of a test allocator (or of the bitmaps and address ranges) with preemption off, adds up what that
call advanced, and as it exits writes those sums to palloc-cover.<pid>.txt in its
-test.gocoverdir, beside the profile the test binary writes itself. Here they are mapped to
source lines through that profile's meta-data (`go tool covdata debugdump`), and each is checked
against the binary's whole count of the same block. What is reported is what palloc's operations
ran, nothing else. A helper that dies (a throw, a hang, a kill) writes nothing: its counts are
lost, which only ever under-counts. The one inexactness: a "new" of a heap with chunks is
NewPageAlloc, which allocates its pageAlloc on the helper's own heap inside the call counted.

Go counts basic blocks, not branches: a line is reached when a block on it ran; `blocks` are
reported beside lines, and there is no branch coverage to give.

The files reported are mpagealloc.go (and its _64bit/_32bit half), mpallocbits.go, mpagecache.go,
mranges.go and the pageAlloc side of mgcscavenge.go (SCAVENGE_SIDE: the page allocator's and the
scavenge index's functions, not the background scavenger's pacing). For a patch, `changed`
says how often each changed statement line ran (any runtime file), and a patch whose changed
lines never ran leaves a differential without divergence `inconclusive` (goref/verdict.py).
`steer_verbs` weights the generator's verbs toward the functions a patch changes, and when a
campaign without divergence still never ran them, verify-change runs a short one more drawing
almost only their verbs (`target_verbs`).

Mirrors no Go file; reads Go's coverage data of src/runtime.
"""

from __future__ import annotations

import dataclasses
import difflib
import html
import os
import re
from pathlib import Path

from palloc.spec.errors import PallocError

FILES = ("mpagealloc.go", "mpagealloc_64bit.go", "mpagealloc_32bit.go", "mpallocbits.go", "mpagecache.go",
         "mranges.go", "mgcscavenge.go")
# mgcscavenge.go's functions on the page allocator's side (by receiver type, or by name).
SCAVENGE_SIDE = re.compile(r"^\(\*?(pageAlloc|pallocData|scavengeIndex|atomicScavChunkData|scavChunkData|scavChunkFlags)\)"
                           r"|^(fillAligned|unpackScavChunkData)$")
_BLOCK = re.compile(r"^(?P<path>.+?):(?P<l0>\d+)\.(?P<c0>\d+),(?P<l1>\d+)\.(?P<c1>\d+) (?P<n>\d+) (?P<count>\d+)$")
_FUNC = re.compile(r"^func (?:\((?:\w+ )?(?P<star>\*?)(?P<recv>\w+)(?:\[[^\]]*\])?\) )?(?P<name>\w+)")


def helper_options(coverdir: str | os.PathLike) -> dict:
    """Returns the GoHelper keyword arguments that make a coverage helper count palloc's operations
    into coverdir (one counter file per helper process, written as it exits)."""
    return {"args": [f"-test.gocoverdir={Path(coverdir).resolve()}"], "env": {"PALLOC_COVER": "1", "GOMAXPROCS": "1"}}


@dataclasses.dataclass(frozen=True)
class Block:
    """One basic block of Go's profile: [l0.c0, l1.c1) in file, its statements and how often it ran."""

    file: str
    l0: int
    c0: int
    l1: int
    c1: int
    stmts: int
    count: int


def parse_profile(text: str) -> list[Block]:
    """Returns the blocks of a text profile (`mode: count` then one block a line), the counts of
    a block listed twice (several counter files) added. Raises PallocError on a line it cannot read."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("mode: "):
        raise PallocError("not a Go coverage profile (no 'mode:' line)")
    acc: dict[tuple, int] = {}
    for n, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        m = _BLOCK.match(line)
        if not m:
            raise PallocError(f"coverage profile line {n} unreadable: {line[:80]!r}")
        key = (Path(m["path"]).name, int(m["l0"]), int(m["c0"]), int(m["l1"]), int(m["c1"]), int(m["n"]))
        acc[key] = acc.get(key, 0) + int(m["count"])
    return [Block(*k, c) for k, c in acc.items()]


_UNIT = re.compile(r"^(\d+): L(\d+):C(\d+) -- L(\d+):C(\d+) NS=(\d+) = (\d+)$")


def _meta_units(coverdir: Path, tc) -> list[list[list]]:
    """Returns package runtime's functions in meta-data order (a function's id is its index), each
    a list of its units [file, l0, c0, l1, c1, stmts, count] (count: every process's whole count,
    the runtime's own heap included), read from `go tool covdata debugdump`."""
    r = tc.run(["tool", "covdata", "debugdump", f"-i={coverdir}"])
    if r.returncode != 0:
        raise PallocError(f"go tool covdata could not read {coverdir}: {(r.stderr or r.stdout).strip()[:200]}")
    funcs: list[list[list]] = []
    pkg, src = None, None
    for line in r.stdout.splitlines():
        if line.startswith("Package path: "):
            pkg = line.split(": ", 1)[1]
            if pkg == "runtime" and funcs:  # a second listing (per counter file): keep the first's structure
                break
        elif pkg != "runtime":
            continue
        elif line.startswith("Func: "):
            funcs.append([])
        elif line.startswith("Srcfile: "):
            src = Path(line.split(": ", 1)[1]).name
        elif (m := _UNIT.match(line)) and funcs:
            if int(m[1]) != len(funcs[-1]):
                raise PallocError(f"go tool covdata debugdump lists units out of order at {line!r}; palloc cannot read "
                                  "this Go release's coverage dump")
            funcs[-1].append([src, *(int(x) for x in m.groups()[1:])])
    return funcs


def read_profile(coverdir: str | os.PathLike, tc) -> list[Block]:
    """Returns the runtime's blocks with the counts palloc's operations ran, from the helpers'
    palloc-cover.<pid>.txt files in coverdir (each a function id and its counters per line),
    mapped to source through the meta-data the test binaries wrote beside them. [] when no
    helper exited cleanly. Raises PallocError when a count exceeds the process's own total for
    the same block (the mapping would be wrong)."""
    d = Path(coverdir)
    own_files = sorted(d.glob("palloc-cover.*.txt"))
    if not own_files or not any(d.glob("covmeta.*")):
        return []
    own: dict[tuple[int, int], int] = {}
    for f in own_files:
        lines = f.read_text().splitlines()
        if not lines or lines[0] != "palloc-cover 1":
            raise PallocError(f"{f} is not a palloc-cover file (first line {lines[:1]})")
        for line in lines[1:]:
            _pkg, fid, *counts = (int(x) for x in line.split())
            for j, c in enumerate(counts):
                if c:
                    own[fid, j] = own.get((fid, j), 0) + c
    funcs = _meta_units(d, tc)
    blocks = []
    for fid, units in enumerate(funcs):
        for j, (src, l0, c0, l1, c1, ns, total) in enumerate(units):
            c = own.pop((fid, j), 0)
            if c > total:
                raise PallocError(f"coverage: palloc's count {c} of {src}:{l0} exceeds the binary's own {total}; "
                                  "the counters do not match the meta-data")
            blocks.append(Block(src, l0, c0, l1, c1, ns, c))
    if own:
        raise PallocError(f"coverage: {len(own)} of palloc's counters name no block of the meta-data")
    return blocks


# --- the runtime's source, per file -----------------------------------------------------------


def source_of(tc, overlay: dict[str, str] | None, name: str) -> list[str] | None:
    """Returns the lines of src/runtime/<name> as the helper was built (a patched copy if the
    overlay has one), or None if there is no such file."""
    rel = f"src/runtime/{name}"
    path = (overlay or {}).get(rel) or (tc.runtime_dir / name)
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return None


def functions(src: list[str]) -> list[tuple[int, int, str]]:
    """Returns (first line, last line, name) of each top-level func, 1-based: "(*pageAlloc).find"."""
    out = []
    for i, line in enumerate(src):
        m = _FUNC.match(line)
        if not m:
            continue
        end = next((j for j in range(i, len(src)) if src[j] == "}"), i)
        name = f"({m['star']}{m['recv']}).{m['name']}" if m["recv"] else m["name"]
        out.append((i + 1, end + 1, name))
    return out


def function_at(funcs: list[tuple[int, int, str]], line: int) -> str | None:
    return next((f for a, b, f in funcs if a <= line <= b), None)


def _is_code(text: str) -> bool:
    t = text.strip()
    return bool(t) and t not in ("}", "{", ")") and not t.startswith("//")


@dataclasses.dataclass
class FileCoverage:
    """One runtime file: each statement line's count (the most any block on it ran), blocks run."""

    name: str
    lines: dict[int, int]
    blocks: int
    blocks_reached: int
    funcs: list[tuple[int, int, str]]

    @property
    def reached(self) -> int:
        return sum(1 for c in self.lines.values() if c)

    def never_reached(self) -> list[tuple[int, int, str]]:
        """Returns the runs of statement lines never reached: (first, last, function)."""
        runs: list[list] = []
        for line in sorted(self.lines):
            if self.lines[line]:
                continue
            f = function_at(self.funcs, line) or "?"
            if runs and runs[-1][2] == f and not any(self.lines.get(k) for k in range(runs[-1][1] + 1, line)):
                runs[-1][1] = line
            else:
                runs.append([line, line, f])
        return [tuple(r) for r in runs]

    def to_json(self) -> dict:
        return {"file": self.name, "lines": len(self.lines), "lines_reached": self.reached, "blocks": self.blocks,
                "blocks_reached": self.blocks_reached,
                "never_reached": [{"lines": [a, b], "function": f} for a, b, f in self.never_reached()]}


def _in_scope(name: str, fn: str | None) -> bool:
    return name != "mgcscavenge.go" or bool(fn and SCAVENGE_SIDE.match(fn))


def file_coverage(blocks: list[Block], name: str, src: list[str], scoped: bool = True) -> FileCoverage:
    """Returns name's coverage from the profile's blocks (scoped: mgcscavenge.go's pageAlloc side only)."""
    funcs = functions(src)
    lines: dict[int, int] = {}
    nb = reached = 0
    for b in blocks:
        if b.file != name:
            continue
        if scoped and not _in_scope(name, function_at(funcs, b.l0)):
            continue
        nb += 1
        reached += b.count > 0
        for line in range(b.l0, b.l1 + 1):
            if line <= len(src) and _is_code(src[line - 1]):
                lines[line] = max(lines.get(line, 0), b.count)
    return FileCoverage(name, lines, nb, reached, funcs)


@dataclasses.dataclass
class Report:
    """The coverage of the allocator's files, and (for a patch) of its changed lines."""

    files: list[FileCoverage]
    sources: dict[str, list[str]]
    changed: list[dict] = dataclasses.field(default_factory=list)
    html: str | None = None  # where write_html put the view, if it was written

    @property
    def changed_status(self) -> str | None:
        """"ran" (a changed statement line ran), "never ran" (none did), "no statements" (the
        change touches no line Go counts: a declaration, a constant) or None (no patch)."""
        if not self.changed:
            return None
        counted = [c for c in self.changed if c["statement"]]
        if not counted:
            return "no statements"
        return "ran" if any(c["count"] for c in counted) else "never ran"

    def changed_sentences(self) -> list[str]:
        """Returns one sentence per changed function: how often its changed lines ran."""
        by_fn: dict[tuple, list[dict]] = {}
        for c in self.changed:
            if c["statement"]:
                by_fn.setdefault((c["file"], c["function"]), []).append(c)
        out = []
        for (f, fn), cs in by_fn.items():
            where = f"{fn or 'top level'} ({f}:{cs[0]['line']}{'-' + str(cs[-1]['line']) if len(cs) > 1 else ''})"
            most = max(c["count"] for c in cs)
            never = [c["line"] for c in cs if not c["count"]]
            if not most:
                out.append(f"the changed line{'s' if len(cs) > 1 else ''} in {where} never ran: "
                           "no divergence means nothing here")
            else:
                s = f"the changed line{'s' if len(cs) > 1 else ''} in {where} ran {most:,} times"
                if never:
                    s += f" (line{'s' if len(never) > 1 else ''} {', '.join(map(str, never))} never)"
                out.append(s)
        if self.changed and not by_fn:
            out.append("the change touches no line Go's coverage counts (a declaration or a constant)")
        return out

    def to_json(self) -> dict:
        return {"files": [f.to_json() for f in self.files], "html": self.html, "changed": self.changed,
                "changed_status": self.changed_status, "changed_sentences": self.changed_sentences()}

    def summary(self, never_limit: int = 8) -> str:
        """Returns the figures as text: per file, lines and blocks reached, and the lines never reached."""
        out = []
        for f in self.files:
            pct = 100.0 * f.reached / len(f.lines) if f.lines else 0.0
            scope = " (pageAlloc side)" if f.name == "mgcscavenge.go" else ""
            out.append(f"{f.name}{scope}: {f.reached}/{len(f.lines)} lines ({pct:.0f}%), "
                       f"{f.blocks_reached}/{f.blocks} blocks")
            nr = f.never_reached()
            for a, b, fn in nr[:never_limit]:
                out.append(f"    never reached: {f.name}:{a}{'-' + str(b) if b != a else ''} in {fn}")
            if len(nr) > never_limit:
                out.append(f"    ... and {len(nr) - never_limit} more runs never reached (see the HTML view)")
        out += self.changed_sentences()
        return "\n".join(out)


def report(blocks: list[Block], tc, overlay: dict[str, str] | None = None,
           changed: dict[str, list[int]] | None = None) -> Report:
    """Returns the Report of a profile's blocks; changed maps file names to changed line numbers
    (in the built, patched file)."""
    files, sources = [], {}
    for name in FILES:
        src = source_of(tc, overlay, name)
        if src is None or not any(b.file == name for b in blocks):
            continue
        sources[name] = src
        files.append(file_coverage(blocks, name, src))
    rows = []
    for name, lines in sorted((changed or {}).items()):
        src = sources.get(name) or source_of(tc, overlay, name) or []
        sources.setdefault(name, src)
        fc = file_coverage(blocks, name, src, scoped=False)
        for line in lines:
            rows.append({"file": name, "line": line, "function": function_at(fc.funcs, line),
                         "statement": line in fc.lines, "count": fc.lines.get(line, 0),
                         "text": src[line - 1].strip() if 0 < line <= len(src) else ""})
    return Report(files, sources, rows)


def changed_lines(base_runtime: Path, overlay: dict[str, str]) -> dict[str, list[int]]:
    """Returns, per runtime file a patch changes, the line numbers of its patched copy that are new
    or changed (a deletion marks the line that follows it)."""
    out: dict[str, list[int]] = {}
    for rel, new in sorted(overlay.items()):
        name = Path(rel).name
        if not new or not name.endswith(".go"):
            continue
        old_f = Path(base_runtime) / name
        a = old_f.read_text().splitlines() if old_f.is_file() else []
        b = Path(new).read_text().splitlines()
        lines: set[int] = set()
        for tag, _i1, _i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
            if tag in ("replace", "insert"):
                lines.update(range(j1 + 1, j2 + 1))
            elif tag == "delete" and j1 < len(b):
                lines.add(j1 + 1)
        if lines:
            out[name] = sorted(lines)
    return out


# --- steering: the verbs that reach a function ------------------------------------------------

# Generator verbs (goref/fuzz.py VERB_WEIGHTS) that run each function, by name; a function not
# listed takes its file's.
FUNCTION_VERBS = {
    "grow": ["grow"], "sysGrow": ["grow"], "enableChunkHugePages": ["grow"], "sysInit": ["grow"],
    "find": ["alloc", "find"], "findMappedAddr": ["alloc", "find"], "alloc": ["alloc", "alloc_to_cache"],
    "allocRange": ["alloc", "alloc_range"], "update": ["alloc", "free", "alloc_range"], "free": ["free"],
    "allocToCache": ["alloc_to_cache"], "allocN": ["cache_alloc"], "flush": ["cache_flush"],
    "scavenge": ["scavenge"], "scavengeOne": ["scavenge"], "findScavengeCandidate": ["scavenge"],
    "fillAligned": ["scavenge"], "nextGen": ["next_gen", "scavenge"], "shouldScavenge": ["scavenge"],
    "findSmallN": ["alloc", "bits"], "findLargeN": ["alloc", "bits", "carve"], "summarize": ["alloc", "free", "bits"],
}
FILE_VERBS = {
    "mpagealloc.go": ["alloc", "free", "find", "grow"], "mpagealloc_64bit.go": ["grow"],
    "mpagealloc_32bit.go": ["grow"], "mpallocbits.go": ["bits", "alloc", "carve"],
    "mpagecache.go": ["alloc_to_cache", "cache_alloc", "cache_flush"], "mranges.go": ["addr_ranges", "grow"],
    "mgcscavenge.go": ["scavenge", "next_gen"],
}
STEER_EXTRA = 6  # how many more times a steered verb is listed


def steer_verbs(changed: dict[str, list[int]], tc, overlay: dict[str, str] | None = None,
                base: list[str] | None = None) -> list[str] | None:
    """Returns the generator's verb list with the verbs that reach the changed functions listed
    STEER_EXTRA more times each, or None when the change is in no allocator file."""
    from palloc.goref.fuzz import VERB_WEIGHTS

    verbs: list[str] = []
    for name, lines in changed.items():
        if name not in FILE_VERBS:
            continue
        funcs = functions(source_of(tc, overlay, name) or [])
        for line in lines:
            fn = function_at(funcs, line) or ""
            verbs += FUNCTION_VERBS.get(fn.rsplit(".", 1)[-1], FILE_VERBS[name])
    if not verbs:
        return None
    return list(VERB_WEIGHTS if base is None else base) + [v for v in dict.fromkeys(verbs) for _ in range(STEER_EXTRA)]


def target_verbs(changed: dict[str, list[int]], tc, overlay: dict[str, str] | None = None) -> list[str] | None:
    """Returns a verb list drawing almost only the verbs that reach the changed functions (alloc
    and free stay, for the heap they need), for a campaign whose first run never reached them;
    None when the change is in no allocator file."""
    steered = steer_verbs(changed, tc, overlay, base=[])
    if not steered:
        return None
    return ["alloc", "free"] + [v for v in dict.fromkeys(steered) for _ in range(TARGET_WEIGHT)]


TARGET_WEIGHT = 10


# --- the HTML view -----------------------------------------------------------------------------

_STYLE = """body{background:#111;color:#ccc;font-family:monospace;margin:0}
#top{position:sticky;top:0;background:#000;padding:6px 12px;border-bottom:1px solid #333}
pre{margin:0;padding:8px 12px}.n{color:#666;display:inline-block;width:5.5em;text-align:right;margin-right:1em}
.c{color:#888;display:inline-block;width:7em;text-align:right;margin-right:1em}
.cov{color:#2ecc71}.unc{color:#e74c3c}.chg{outline:1px solid #f1c40f}.file{display:none}.file:target{display:block}
a{color:#8ab4f8}"""


def write_html(rep: Report, path: Path, title: str = "palloc: runtime coverage") -> Path:
    """Writes one self-contained HTML file (no network) in `go tool cover -html`'s colours: each
    allocator file's source, reached lines green with their count, never reached red, changed
    lines outlined; written to a temporary file and renamed."""
    from palloc.goref.files import write_atomic

    changed = {(c["file"], c["line"]) for c in rep.changed}
    names = [f.name for f in rep.files] + [n for n in {c["file"] for c in rep.changed} if n not in {f.name for f in rep.files}]
    by = {f.name: f for f in rep.files}
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_STYLE}</style></head><body><div id='top'>{html.escape(title)}: "]
    for n in names:
        f = by.get(n)
        fig = f" {f.reached}/{len(f.lines)}" if f else ""
        parts.append(f"<a href='#{html.escape(n)}'>{html.escape(n)}{fig}</a> ")
    parts.append("</div>")
    for n in names:
        src = rep.sources.get(n) or []
        f = by.get(n)
        counts = f.lines if f else {c["line"]: c["count"] for c in rep.changed if c["file"] == n and c["statement"]}
        parts.append(f"<pre class='file' id='{html.escape(n)}'>")
        for i, text in enumerate(src, 1):
            cls = ("cov" if counts[i] else "unc") if i in counts else ""
            if (n, i) in changed:
                cls += " chg"
            cnt = f"{counts[i]:,}" if i in counts else ""
            parts.append(f"<span class='n'>{i}</span><span class='c'>{cnt}</span>"
                         f"<span class='{cls.strip()}'>{html.escape(text)}</span>\n")
        parts.append("</pre>")
    parts.append("<script>if(!location.hash)location.hash=" + repr("#" + (names[0] if names else "")) + "</script>")
    parts.append("</body></html>\n")
    return write_atomic(Path(path), "".join(parts))


# --- a campaign with coverage -----------------------------------------------------------------


def coverage_campaign(conf, runner, tc, coverdir: str | os.PathLike):
    """Returns (conf, runner) turned to a coverage helper of the same runtime: conf.binary the
    coverage build (built now if the cache has none), conf.coverdir where its helpers count, and a
    runner on it with the model's platform and host as runner had them."""
    from palloc.goref.build import build_helper
    from palloc.goref.campaign import make_runner

    binary = build_helper(tc, conf.goarch, coverage=True)
    conf = dataclasses.replace(conf, binary=str(binary), platform=runner.p, host=runner.host,
                               go_version=runner.go_version, coverdir=str(coverdir))
    new = make_runner(conf)
    new.platform_diffs = getattr(runner, "platform_diffs", [])
    new.on_example = getattr(runner, "on_example", None)
    return conf, new


def finish(coverdir: str | os.PathLike, tc, out_dir: str | os.PathLike | None, name: str,
           overlay: dict[str, str] | None = None, changed: dict[str, list[int]] | None = None) -> Report:
    """Returns the Report of what the campaign's helpers counted in coverdir (they must have
    exited); with out_dir, writes <name>.html, <name>.json and <name>.profile.txt there."""
    import json

    from palloc.goref.files import write_atomic

    blocks = read_profile(coverdir, tc)
    rep = report(blocks, tc, overlay, changed)
    if out_dir is not None:
        d = Path(out_dir)
        d.mkdir(parents=True, exist_ok=True)
        rep.html = str(write_html(rep, d / f"{name}.html", f"palloc: runtime coverage, {name}"))
        write_atomic(d / f"{name}.json", json.dumps(rep.to_json(), indent=1) + "\n")
        lines = ["mode: count"] + [f"runtime/{b.file}:{b.l0}.{b.c0},{b.l1}.{b.c1} {b.stmts} {b.count}" for b in blocks]
        write_atomic(d / f"{name}.profile.txt", "\n".join(lines) + "\n")
    return rep


def cli_start(where: str | None, conf, runner, goroot: str | None):
    """For `palloc fuzz --coverage [DIR]`: returns (conf, runner, coverdir) on a coverage helper,
    or the arguments unchanged and None without --coverage."""
    if where is None:
        return conf, runner, None
    from palloc.goref import procs
    from palloc.goref.toolchain import find_toolchain

    coverdir = procs.tempdir("cover")
    conf, new = coverage_campaign(conf, runner, find_toolchain(goroot), coverdir)
    return conf, new, coverdir


def cli_finish(where: str, coverdir: str, runner, goroot: str | None, goarch: str, text: bool) -> dict:
    """Ends a `palloc fuzz --coverage` campaign: its helpers exit (writing their counts), the
    report is written to where/<goarch>.html|json|profile.txt and, in text mode, printed."""
    import shutil

    from palloc.goref.toolchain import find_toolchain

    if hasattr(runner.go, "helper"):
        runner.go.helper.close()
    try:
        rep = finish(coverdir, find_toolchain(goroot), where, goarch)
    finally:
        shutil.rmtree(coverdir, ignore_errors=True)
    if text:
        print(f"runtime coverage ({goarch}; counted in the runtime, palloc's operations only):")
        print("  " + rep.summary().replace("\n", "\n  "))
        print(f"  the runtime's source, line by line: {rep.html}")
    return rep.to_json()
