"""The per-platform constants: derived as the runtime derives them, checked as it checks them.

That they equal the runtime's own, as go/types folds them from the toolchain's source for every
platform, is tests/goref/test_goast.py's (the source is the ground truth, not a table of notes).
"""

from __future__ import annotations

import pytest

from palloc.spec import ConfigError, constants, hypothetical, platform, platform_names


def test_every_runtime_platform_is_listed():
    want = {"linux/amd64", "linux/arm64", "ios/arm64", "aix/ppc64", "windows/amd64", "linux/386",
            "linux/arm", "linux/mips", "linux/mipsle", "js/wasm", "wasip1/wasm", "linux/riscv64",
            "linux/ppc64le", "linux/s390x", "linux/loong64", "linux/mips64", "darwin/arm64"}
    assert want <= set(platform_names())


@pytest.mark.parametrize("name", platform_names())
def test_root_level_exactly_reaches_max_packed_value(name):
    p = platform(name)
    assert p.level_log_pages[0] == p.log_max_packed_value
    assert p.level_shift[-1] == p.log_palloc_chunk_bytes
    assert p.summary_l0_bits + (p.summary_levels - 1) * p.summary_level_bits + p.log_palloc_chunk_bytes == p.heap_addr_bits


def test_amd64_values_match_the_runtime_comments():
    p = platform("linux/amd64")
    assert p.level_bits == (14, 3, 3, 3, 3)
    assert p.level_shift == (34, 31, 28, 25, 22)
    assert p.free_chunk_sum == 0x8000040000200
    assert p.max_off_addr == 0x7FFFFFFFFFFF
    assert p.base_chunk_idx == 0x200C000


def test_wasm_chunks_shrink_in_go_1_26():
    assert platform("js/wasm", "1.25").palloc_chunk_pages == 512
    assert platform("js/wasm", "1.26").palloc_chunk_pages == 64
    assert platform("js/wasm", "1.26").free_chunk_sum == 0x1000200040


def test_scavenge_index_flag_exists_only_in_go_1_21():
    assert platform("linux/amd64", "1.21").scav_index_has_no_huge_page_flag
    assert not platform("linux/amd64", "1.22").scav_index_has_no_huge_page_flag


def test_data_that_disagrees_with_malloc_go_is_refused():
    with pytest.raises(ConfigError, match="malloc.go gives"):
        constants.Platform.make("linux/amd64", heap_addr_bits=47, ptr_size=8, arena_base_offset=0xFFFF800000000000,
                                page_alloc_file="64bit", phys_page_size=4096, phys_huge_page_size=0)


def test_negative_l0_bits_is_refused():
    with pytest.raises(ConfigError, match="summaryL0Bits"):
        hypothetical("linux/386", heap_addr_bits=24)
