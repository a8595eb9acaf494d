"""Per-platform constants of the page allocator, derived as the Go runtime derives them.

Mirrors the constant blocks of src/runtime/malloc.go, mpagealloc.go, mpagealloc_64bit.go,
mpagealloc_32bit.go, mpagecache.go and mgcscavenge.go (Go 1.21.13 - 1.27.3). The inputs are
data (spec/platforms.toml); every derived value is computed here and the runtime's own
consistency conditions are checked when a Platform is made, so a hypothetical configuration
that the runtime would refuse is refused here too, with the runtime's reason.
"""

from __future__ import annotations

import dataclasses
import functools
import tomllib
from importlib import resources
from typing import Any, Mapping

from palloc.spec.errors import PallocError

DEFAULT_GO_VERSION = "1.27"

# Common to every platform and version.
PAGE_SHIFT = 13  # internal/runtime/gc.PageShift (sizeclasses.go _PageShift before 1.25)
PAGE_SIZE = 1 << PAGE_SHIFT
PAGE_CACHE_PAGES = 64  # mpagecache.go: 8 * unsafe.Sizeof(pageCache.cache)
PALLOC_SUM_BYTES = 8  # unsafe.Sizeof(pallocSum(0))
MAX_PHYS_PAGE_SIZE = 512 << 10  # malloc.go: maxPhysPageSize
MAX_PAGES_PER_PHYS_PAGE = MAX_PHYS_PAGE_SIZE // PAGE_SIZE  # mgcscavenge.go
SCAV_CHUNK_HI_OCC_FRAC = 0.96875  # mgcscavenge.go: scavChunkHiOccFrac


class ConfigError(PallocError, ValueError):
    """A platform or configuration the runtime would refuse (its reason is the message)."""


# The Go versions the model mirrors (MODELLED_GO_VERSIONS[0] to [1], inclusive).
MODELLED_GO_VERSIONS = ((1, 21), (1, 27))


def parse_go_version(v: str) -> tuple[int, int]:
    """Returns (major, minor) of "1.27", "1.27.3" or "go1.27.3"; raises ConfigError for anything
    else, and for a version the model does not mirror."""
    if not isinstance(v, str):
        raise ConfigError(f"go_version must be a string such as \"1.27\", not {v!r}")
    parts = v.removeprefix("go").split(".")
    if not 2 <= len(parts) <= 3 or not all(x.isdigit() and x.isascii() for x in parts):
        raise ConfigError(f"bad Go version {v!r}: expected something like 1.27 or 1.27.3")
    major, minor = int(parts[0]), int(parts[1])
    lo, hi = MODELLED_GO_VERSIONS
    if not lo <= (major, minor) <= hi:
        raise ConfigError(f"Go version {v} is not modelled: palloc covers {lo[0]}.{lo[1]} to {hi[0]}.{hi[1]}")
    return major, minor


# Each integer input of a Platform: the range its runtime type allows, and why. check() holds
# every Platform to these before deriving anything, however it was made.
_U64 = (1 << 64) - 1
_INT_INPUTS = {
    "ptr_size": (4, 8, "the size of a uintptr: 4 or 8"),
    "heap_addr_bits": (1, 64, "address bits of a uintptr"),
    "arena_base_offset": (0, _U64, "a uintptr"),
    "phys_page_size": (1, MAX_PHYS_PAGE_SIZE, f"a page size no larger than maxPhysPageSize ({MAX_PHYS_PAGE_SIZE})"),
    "phys_huge_page_size": (0, _U64, "a uintptr (0: no huge pages)"),
    "summary_level_bits": (1, 63, "bits of a summary index per level"),
    # pageBits is [pallocChunkPages/64]uint64 and the scavenge index counts a chunk's pages in a uint16.
    "log_palloc_chunk_pages": (6, 15, "pallocChunkPages must be a whole number of 64-bit words and fit a uint16"),
    "summary_levels": (1, 64, "at least the leaf level"),
    "palloc_chunks_l1_bits": (0, 64, "bits of the chunk index"),
}


@dataclasses.dataclass(frozen=True)
class Platform:
    """The page allocator's constants on one GOOS/GOARCH at one Go version.

    Field names are the runtime's names in snake_case. Construct with Platform.make, which
    derives the rest and checks the runtime's consistency conditions.
    """

    name: str
    go_version: str
    ptr_size: int
    heap_addr_bits: int
    arena_base_offset: int
    page_alloc_file: str  # "64bit" or "32bit"
    phys_page_size: int
    phys_huge_page_size: int
    summary_level_bits: int = 3
    # Derived (filled in by make).
    log_palloc_chunk_pages: int = 0
    summary_levels: int = 0
    palloc_chunks_l1_bits: int = 0

    # --- construction -------------------------------------------------------------------

    @classmethod
    def make(cls, name: str, go_version: str = DEFAULT_GO_VERSION, **inputs: Any) -> "Platform":
        """Derives a platform from its inputs and checks it as the runtime would."""
        ver = parse_go_version(go_version)
        goos, _, goarch = name.partition("/")
        is_wasm = goarch == "wasm"
        # mpagealloc.go (1.26+): logPallocChunkPages = 9*(1-goarch.IsWasm) + 6*goarch.IsWasm
        log_chunk_pages = 6 if (is_wasm and ver >= (1, 26)) else 9
        log_chunk_pages = inputs.pop("log_palloc_chunk_pages", log_chunk_pages)
        file = inputs.get("page_alloc_file")  # an unknown one is refused by check()
        levels = inputs.pop("summary_levels", 5 if file == "64bit" else 4)
        l1_bits = inputs.pop("palloc_chunks_l1_bits", 13 if file == "64bit" else 0)
        p = cls(
            name=name,
            go_version=go_version,
            log_palloc_chunk_pages=log_chunk_pages,
            summary_levels=levels,
            palloc_chunks_l1_bits=l1_bits,
            **inputs,
        )
        p.check()
        return p

    def replace(self, **changes: Any) -> "Platform":
        """Returns a hypothetical variant of this platform, checked like a real one."""
        p = dataclasses.replace(self, **changes)
        p.check()
        return p

    # --- derived values, as mpagealloc*.go write them --------------------------------------

    @functools.cached_property
    def uintptr_mask(self) -> int:
        return (1 << (8 * self.ptr_size)) - 1

    @functools.cached_property
    def ptr_bits(self) -> int:
        return 8 * self.ptr_size

    @functools.cached_property
    def page_size(self) -> int:
        return PAGE_SIZE

    @functools.cached_property
    def palloc_chunk_pages(self) -> int:
        return 1 << self.log_palloc_chunk_pages

    @functools.cached_property
    def log_palloc_chunk_bytes(self) -> int:
        return self.log_palloc_chunk_pages + PAGE_SHIFT

    @functools.cached_property
    def palloc_chunk_bytes(self) -> int:
        return self.palloc_chunk_pages * PAGE_SIZE

    @functools.cached_property
    def summary_l0_bits(self) -> int:
        # summaryL0Bits + (summaryLevels-1)*summaryLevelBits + logPallocChunkBytes = heapAddrBits
        return (
            self.heap_addr_bits
            - self.log_palloc_chunk_bytes
            - (self.summary_levels - 1) * self.summary_level_bits
        )

    @functools.cached_property
    def level_bits(self) -> tuple[int, ...]:
        return (self.summary_l0_bits,) + (self.summary_level_bits,) * (self.summary_levels - 1)

    @functools.cached_property
    def level_shift(self) -> tuple[int, ...]:
        return tuple(
            self.heap_addr_bits - self.summary_l0_bits - l * self.summary_level_bits
            for l in range(self.summary_levels)
        )

    @functools.cached_property
    def level_log_pages(self) -> tuple[int, ...]:
        return tuple(
            self.log_palloc_chunk_pages + (self.summary_levels - 1 - l) * self.summary_level_bits
            for l in range(self.summary_levels)
        )

    @functools.cached_property
    def level_entries(self) -> tuple[int, ...]:
        """Entries reserved for each summary level: 1 << (heapAddrBits - levelShift[l])."""
        return tuple(1 << (self.heap_addr_bits - s) for s in self.level_shift)

    @functools.cached_property
    def log_max_packed_value(self) -> int:
        return self.log_palloc_chunk_pages + (self.summary_levels - 1) * self.summary_level_bits

    @functools.cached_property
    def max_packed_value(self) -> int:
        return 1 << self.log_max_packed_value

    @functools.cached_property
    def free_chunk_sum(self) -> int:
        n, l = self.palloc_chunk_pages, self.log_max_packed_value
        return n | (n << l) | (n << (2 * l))

    @functools.cached_property
    def palloc_chunks_l2_bits(self) -> int:
        return self.heap_addr_bits - self.log_palloc_chunk_bytes - self.palloc_chunks_l1_bits

    @functools.cached_property
    def palloc_chunks_l1_shift(self) -> int:
        return self.palloc_chunks_l2_bits

    @functools.cached_property
    def min_off_addr(self) -> int:
        # mranges.go: minOffAddr = offAddr{arenaBaseOffset}
        return self.arena_base_offset

    @functools.cached_property
    def max_off_addr(self) -> int:
        # mranges.go: maxOffAddr = offAddr{(((1 << heapAddrBits) - 1) + arenaBaseOffset) & uintptrMask}
        return (((1 << self.heap_addr_bits) - 1) + self.arena_base_offset) & self.uintptr_mask

    @functools.cached_property
    def max_phys_huge_page_size(self) -> int:
        return self.palloc_chunk_bytes

    @functools.cached_property
    def effective_phys_huge_page_size(self) -> int:
        """physHugePageSize after mallocinit's clamp (0 when larger than a chunk)."""
        h = self.phys_huge_page_size
        return 0 if h > self.max_phys_huge_page_size else h

    @functools.cached_property
    def log_scav_chunk_in_use_max(self) -> int:
        return self.log_palloc_chunk_pages + 1

    @functools.cached_property
    def scav_chunk_flags_shift(self) -> int:
        return 16 + self.log_scav_chunk_in_use_max

    @functools.cached_property
    def scav_chunk_hi_occ_pages(self) -> int:
        # uint16(scavChunkHiOccFrac * pallocChunkPages)
        return int(SCAV_CHUNK_HI_OCC_FRAC * self.palloc_chunk_pages) & 0xFFFF

    @functools.cached_property
    def scav_index_has_no_huge_page_flag(self) -> bool:
        """Go 1.21 kept a NoHugePage flag (bit 1) in the scavenge index; 1.22 removed it."""
        return parse_go_version(self.go_version) < (1, 22)

    @functools.cached_property
    def base_chunk_idx(self) -> int:
        """export_test.go BaseChunkIdx."""
        mul = 0xC000 if self.page_alloc_file == "64bit" else 0x100
        addr = (mul * self.palloc_chunk_bytes + self.aix_offset) & self.uintptr_mask
        return ((addr - self.arena_base_offset) & self.uintptr_mask) // self.palloc_chunk_bytes

    @functools.cached_property
    def aix_offset(self) -> int:
        return self.arena_base_offset if self.name.startswith("aix/") else 0

    @functools.cached_property
    def is_64bit_page_alloc(self) -> bool:
        return self.page_alloc_file == "64bit"

    # --- the runtime's consistency conditions ---------------------------------------------

    def check_inputs(self) -> None:
        """Raises ConfigError unless every input has its type and a value its runtime type allows.

        The one place inputs are checked: make and replace both reach it through check(), before
        any derived value is computed from them.
        """
        if not isinstance(self.name, str):
            raise ConfigError(f"name must be a GOOS/GOARCH string, not {self.name!r}")
        parse_go_version(self.go_version)
        if self.page_alloc_file not in ("64bit", "32bit"):
            raise ConfigError(f"{self.name}: page_alloc_file must be '64bit' or '32bit', not {self.page_alloc_file!r}")
        for key, (lo, hi, what) in _INT_INPUTS.items():
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int):
                raise ConfigError(f"{self.name}: {key} must be an integer, not {v!r}")
            if not lo <= v <= hi:
                raise ConfigError(f"{self.name}: {key} = {v} is out of range [{lo}, {hi}]: {what}")

    def check(self) -> None:
        """Raises ConfigError unless the inputs are well-typed and the runtime's own conditions hold."""
        self.check_inputs()
        goos, _, goarch = self.name.partition("/")
        if self.ptr_size not in (4, 8):
            raise ConfigError(f"{self.name}: ptr_size must be 4 or 8, not {self.ptr_size}")
        if self.heap_addr_bits > self.ptr_bits:
            raise ConfigError(
                f"{self.name}: heapAddrBits {self.heap_addr_bits} exceeds the {self.ptr_bits}-bit uintptr"
            )
        if self.summary_level_bits < 1:
            raise ConfigError(f"{self.name}: summaryLevelBits must be at least 1")
        if self.summary_l0_bits < 0:
            raise ConfigError(
                f"{self.name}: summaryL0Bits = heapAddrBits - logPallocChunkBytes - "
                f"(summaryLevels-1)*summaryLevelBits = {self.summary_l0_bits} < 0"
            )
        # mpagealloc.go (*pageAlloc).init: "root level max pages doesn't fit in summary"
        if self.level_log_pages[0] > self.log_max_packed_value:
            raise ConfigError(
                f"{self.name}: root level max pages doesn't fit in summary "
                f"(levelLogPages[0]={self.level_log_pages[0]} > logMaxPackedValue={self.log_max_packed_value})"
            )
        if self.palloc_chunks_l2_bits < 0:
            raise ConfigError(f"{self.name}: pallocChunksL2Bits < 0")
        if self.arena_base_offset & (self.palloc_chunk_bytes - 1):
            raise ConfigError(f"{self.name}: arenaBaseOffset must be chunk-aligned")
        if self.arena_base_offset > self.uintptr_mask:
            raise ConfigError(f"{self.name}: arenaBaseOffset does not fit in a uintptr")
        pp = self.phys_page_size
        if pp <= 0 or pp & (pp - 1) or pp > MAX_PHYS_PAGE_SIZE:
            raise ConfigError(
                f"{self.name}: physPageSize {pp} must be a power of two no larger than {MAX_PHYS_PAGE_SIZE}"
            )
        h = self.phys_huge_page_size
        if h and h & (h - 1):
            raise ConfigError(f"{self.name}: physHugePageSize {h} must be 0 or a power of two")
        # Real platforms: the data must agree with malloc.go's formulas.
        if goarch and goos and self.name in _TABLE_NAMES:
            want_bits = _malloc_heap_addr_bits(goos, goarch, self.ptr_size)
            want_abo = _malloc_arena_base_offset(goos, goarch)
            if (self.heap_addr_bits, self.arena_base_offset) != (want_bits, want_abo):
                raise ConfigError(
                    f"{self.name}: data says heapAddrBits={self.heap_addr_bits}, arenaBaseOffset="
                    f"{self.arena_base_offset:#x}; malloc.go gives {want_bits}, {want_abo:#x}"
                )

    def as_dict(self) -> dict[str, Any]:
        """Every input and derived value, for --json output and the Go-helper comparison."""
        return {
            "name": self.name,
            "go_version": self.go_version,
            "ptrSize": self.ptr_size,
            "heapAddrBits": self.heap_addr_bits,
            "arenaBaseOffset": self.arena_base_offset,
            "pageSize": PAGE_SIZE,
            "logPallocChunkPages": self.log_palloc_chunk_pages,
            "pallocChunkPages": self.palloc_chunk_pages,
            "pallocChunkBytes": self.palloc_chunk_bytes,
            "summaryLevels": self.summary_levels,
            "summaryLevelBits": self.summary_level_bits,
            "summaryL0Bits": self.summary_l0_bits,
            "levelBits": list(self.level_bits),
            "levelShift": list(self.level_shift),
            "levelLogPages": list(self.level_log_pages),
            "logMaxPackedValue": self.log_max_packed_value,
            "maxPackedValue": self.max_packed_value,
            "freeChunkSum": self.free_chunk_sum,
            "pallocChunksL1Bits": self.palloc_chunks_l1_bits,
            "pallocChunksL2Bits": self.palloc_chunks_l2_bits,
            "minOffAddr": self.min_off_addr,
            "maxOffAddr": self.max_off_addr,
            "scavChunkHiOccPages": self.scav_chunk_hi_occ_pages,
            "baseChunkIdx": self.base_chunk_idx,
            "physPageSize": self.phys_page_size,
            "physHugePageSize": self.effective_phys_huge_page_size,
        }


def _malloc_heap_addr_bits(goos: str, goarch: str, ptr_size: int) -> int:
    """malloc.go heapAddrBits, term by term."""
    b64 = 1 if ptr_size == 8 else 0
    wasm = int(goarch == "wasm")
    ios_arm64 = int(goos == "ios" and goarch == "arm64")
    mips = int(goarch in ("mips", "mipsle"))
    return (b64 * (1 - wasm) * (1 - ios_arm64)) * 48 + (1 - b64 + wasm) * (32 - mips) + 40 * ios_arm64


def _malloc_arena_base_offset(goos: str, goarch: str) -> int:
    """malloc.go arenaBaseOffset = 0xffff800000000000*goarch.IsAmd64 + 0x0a00000000000000*goos.IsAix."""
    return 0xFFFF800000000000 * int(goarch == "amd64") + 0x0A00000000000000 * int(goos == "aix")


@functools.cache
def _table() -> Mapping[str, Any]:
    return tomllib.loads(resources.files("palloc.spec").joinpath("platforms.toml").read_text())


_TABLE_NAMES = frozenset(_table()["platform"])


def platform_names() -> list[str]:
    """Every platform in spec/platforms.toml, in file order."""
    return list(_table()["platform"])


def default_platform_name() -> str:
    return _table()["default"]


@functools.cache
def platform(name: str | None = None, go_version: str = DEFAULT_GO_VERSION) -> Platform:
    """Returns the checked constants of a supported platform (default linux/amd64, Go 1.27)."""
    name = name or default_platform_name()
    table = _table()["platform"]
    if name not in table:
        raise ConfigError(f"unknown platform {name!r}; known: {', '.join(table)}")
    return Platform.make(name, go_version, **dict(table[name]))


def hypothetical(base: str | None = None, go_version: str = DEFAULT_GO_VERSION, **changes: Any) -> Platform:
    """Returns a checked hypothetical configuration: a real platform with some inputs changed.

    For example hypothetical("linux/amd64", heap_addr_bits=57) or summary_level_bits=4.
    """
    parse_go_version(go_version)  # before platform(), whose cache needs a hashable version
    p = platform(base, go_version)
    allowed = {f.name for f in dataclasses.fields(Platform)} - {"name"}
    bad = set(changes) - allowed
    if bad:
        raise ConfigError(f"unknown configuration keys {sorted(bad)}; allowed: {sorted(allowed)}")
    return p.replace(name=p.name + "+hypothetical", **changes)
