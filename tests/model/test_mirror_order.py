"""The mirror reads beside the runtime: every function of the runtime's page-allocator files has its
counterpart in the model module that mirrors the file, under Go's name in snake_case, in Go's order.

Go's functions are read from the installed toolchain's src/runtime (so a new runtime function the
model lacks shows up here); the model's from its source with ast. Out of scope, and listed: the
scavenger's pacing and goroutine in mgcscavenge.go (outside the allocator) and
atomicScavChunkData's load/store (the model stores a chunk's data in place).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import palloc.model

MODEL = Path(palloc.model.__file__).parent

# Go file -> the model module that mirrors it.
FILES = {
    "mpagealloc.go": "mpagealloc.py",
    "mpallocbits.go": "mpallocbits.py",
    "mpagecache.go": "mpagecache.py",
    "mranges.go": "mranges.py",
    "mgcscavenge.go": "mgcscavenge.py",
}

# Go receiver type -> where its methods live in the model: a class, or a prefix of module functions.
RECEIVERS = {
    "pageAlloc": ("PageAlloc", "PageAllocCache", "PageAllocScavenge"),
    "pageBits": ("PageBits",),
    "pallocBits": ("PallocBits",),
    "pallocData": ("PallocData",),
    "pageCache": ("PageCache",),
    "addrRange": ("AddrRange",),
    "offAddr": ("OffAddr",),
    "atomicOffAddr": ("AtomicOffAddr",),
    "addrRanges": ("AddrRanges",),
    "scavengeIndex": ("ScavengeIndex",),
    "scavChunkData": ("ScavChunkData",),
    "scavChunkFlags": ("ScavChunkData",),
    "pallocSum": ("palloc_sum_",),
    "chunkIdx": ("chunk_idx_",),
}

# Runtime functions the model does not mirror, with the reason.
OUT_OF_SCOPE = {
    "heapRetained", "gcPaceScavenger", "bgscavenge", "printScavTrace",  # pacing and the goroutine
    "scavengerState.*", "piController.*",
    "atomicScavChunkData.*",  # the model's scavenge index stores each chunk's data in place
}

# Go methods the model defines as module functions (Go's receiver is the first argument).
AS_FUNCTIONS = {"pallocData.findScavengeCandidate": "find_scavenge_candidate"}

_GO_FUNC = re.compile(r"^func (?:\(\w+ \*?(\w+)\) )?(\w+)\(", re.M)


def snake(name: str) -> str:
    """Go's name in snake_case: packPallocSum -> pack_palloc_sum, findSmallN -> find_small_n."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def go_functions(src: str) -> list[str]:
    """Returns the file's functions in order, methods as Receiver.name, minus OUT_OF_SCOPE."""
    out = []
    for recv, name in _GO_FUNC.findall(src):
        full = f"{recv}.{name}" if recv else name
        if full in OUT_OF_SCOPE or f"{recv}.*" in OUT_OF_SCOPE:
            continue
        out.append(full)
    return out


def model_definitions(src: str) -> dict[str, int]:
    """Returns every function and method of a module by qualified name, with its line."""
    out = {}
    for node in ast.parse(src).body:
        if isinstance(node, ast.FunctionDef):
            out[node.name] = node.lineno
        elif isinstance(node, ast.ClassDef):
            for sub in node.body:
                if isinstance(sub, ast.FunctionDef):
                    out[f"{node.name}.{sub.name}"] = sub.lineno
    return out


def counterpart(go: str, defs: dict[str, int]) -> str | None:
    """Returns the model's name for Go function go, or None if the module lacks it."""
    if go in AS_FUNCTIONS:
        return AS_FUNCTIONS[go] if AS_FUNCTIONS[go] in defs else None
    if "." not in go:
        return snake(go) if snake(go) in defs else None
    recv, name = go.split(".")
    for place in RECEIVERS[recv]:
        cand = place + snake(name) if place.endswith("_") else f"{place}.{snake(name)}"
        if cand in defs:
            return cand
    return None


def mirror_problems(go_funcs: list[str], defs: dict[str, int]) -> list[str]:
    """Returns what keeps the module from reading beside the Go file: missing counterparts, and
    each counterpart defined above the one of the Go function before it."""
    problems, last = [], None
    for go in go_funcs:
        name = counterpart(go, defs)
        if name is None:
            problems.append(f"{go}: no counterpart")
            continue
        if last is not None and defs[name] < defs[last[1]]:
            problems.append(f"{go} ({name}, line {defs[name]}) comes before {last[0]} ({last[1]}, line {defs[last[1]]})")
        last = (go, name)
    return problems


@pytest.fixture(scope="module")
def runtime_src() -> Path:
    from palloc.goref.toolchain import find_toolchain
    from palloc.spec.errors import PallocError

    try:
        return find_toolchain().goroot / "src" / "runtime"
    except PallocError as e:
        pytest.skip(f"needs a Go toolchain's runtime source: {e}")


@pytest.mark.go
@pytest.mark.parametrize("go_file", sorted(FILES))
def test_every_runtime_function_has_its_counterpart_in_gos_order(runtime_src, go_file):
    go_funcs = go_functions((runtime_src / go_file).read_text())
    assert len(go_funcs) >= 5
    defs = model_definitions((MODEL / FILES[go_file]).read_text())
    assert mirror_problems(go_funcs, defs) == []


@pytest.mark.go
def test_a_counterpart_out_of_order_or_missing_is_caught(runtime_src):
    """The broken variants of the check: two functions swapped in the Go order, and one renamed."""
    go_funcs = go_functions((runtime_src / "mpagealloc.go").read_text())
    defs = model_definitions((MODEL / "mpagealloc.py").read_text())
    i, j = go_funcs.index("pageAlloc.alloc"), go_funcs.index("pageAlloc.free")
    swapped = list(go_funcs)
    swapped[i], swapped[j] = swapped[j], swapped[i]
    assert any("comes before" in x for x in mirror_problems(swapped, defs))
    renamed = dict(defs)
    renamed["PageAlloc.alloc_fast"] = renamed.pop("PageAlloc.alloc")
    assert mirror_problems(go_funcs, renamed) == ["pageAlloc.alloc: no counterpart"]


def test_go_names_become_snake_case_by_one_rule():
    assert [snake(n) for n in ("packPallocSum", "findSmallN", "setBlock64", "find1", "StoreMin", "allocN")] == [
        "pack_palloc_sum", "find_small_n", "set_block64", "find1", "store_min", "alloc_n"]
