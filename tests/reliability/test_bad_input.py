"""Bad input (issue 12 items 7, 11-14, 16): each is exit 2 with one line saying what is wrong, before
anything expensive (a helper build, a campaign, a solver) starts.

--goroot names a folder with no toolchain, so a check that came too late would fail on the
toolchain instead, and the assertion on the message catches it.
"""

from __future__ import annotations

import json

import pytest

NO_GO = "/nonexistent-goroot"


# --- item 13: budgets that would check nothing ----------------------------------------------


@pytest.mark.parametrize("flag, value", [("--seconds", "nan"), ("--seconds", "inf"), ("--seconds", "-1"),
                                         ("--seconds", "0"), ("--seconds", "soon"), ("--steps", "0"),
                                         ("--steps", "-5"), ("--jobs", "0")])
def test_fuzz_budget_out_of_range_is_an_argument_error(palloc, flag, value):
    line = palloc("fuzz", flag, value, "--goroot", NO_GO).error_line()
    assert flag in line and value in line and "palloc fuzz --help" in line


# --- item 7: the failures folder is checked before the campaign --------------------------------


def test_fuzz_with_an_unwritable_failures_folder_stops_before_the_campaign(palloc, unwritable_dir):
    line = palloc("fuzz", "--failures", unwritable_dir / "cases", "--goroot", NO_GO).error_line()
    assert str(unwritable_dir / "cases") in line and "--failures" in line


@pytest.mark.parametrize("where", ["/proc/foo", "file"])
def test_fuzz_with_a_failures_folder_that_cannot_exist_stops_before_the_campaign(palloc, tmp_path, where):
    if where == "file":
        (tmp_path / "file").write_text("a file, not a folder")
        where = str(tmp_path / "file")
    line = palloc("fuzz", "--failures", where, "--goroot", NO_GO).error_line()
    assert where in line and "--failures" in line


def test_fuzz_failures_folder_check_leaves_nothing_behind(palloc, tmp_path):
    (tmp_path / "kept").mkdir()
    for folder in (tmp_path / "new" / "cases", tmp_path / "kept"):
        assert NO_GO in palloc("fuzz", "--failures", folder, "--goroot", NO_GO).error_line()  # after the check
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["kept"]


# --- item 12: prove --config, and Platform.replace checked as Platform.make is ----------------

BAD_CONFIGS = {
    "negative chunk": "log_palloc_chunk_pages = -3",
    "zero chunk": "log_palloc_chunk_pages = 0",
    "no levels": "summary_levels = 0",
    "string for a number": 'heap_addr_bits = "48"',
    "fractional bits": "heap_addr_bits = 48.5",
    "boolean for a number": "heap_addr_bits = true",
    "unknown file": 'page_alloc_file = "16bit"',
    "version as a number": "go_version = 127",
    "version not modelled": 'go_version = "1.99"',
    "version as a list": "go_version = [1, 27]",
    "table for a number": "summary_level_bits = {bits = 3}",
    "negative offset": "arena_base_offset = -1",
}


@pytest.mark.parametrize("name", sorted(BAD_CONFIGS))
def test_prove_config_with_a_value_of_the_wrong_type_or_range_is_one_line(palloc, tmp_path, name):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'base = "linux/amd64"\n{BAD_CONFIGS[name]}\n')
    line = palloc("prove", "--config", cfg).error_line()
    key = BAD_CONFIGS[name].split(" =")[0]
    assert str(cfg) in line and (key in line or key == "go_version" and "Go version" in line)


def test_prove_config_that_is_not_utf8_is_one_line(palloc, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_bytes(b'base = "linux/amd64"\nheap_addr_bits = 57 # \xff\xfe\n')
    assert str(cfg) in palloc("prove", "--config", cfg).error_line()


@pytest.mark.parametrize("change", [{"heap_addr_bits": 48.5}, {"page_alloc_file": "16bit"}, {"go_version": "1.99"},
                                    {"log_palloc_chunk_pages": 0}, {"summary_levels": 0}, {"ptr_size": "8"}])
def test_replace_refuses_what_make_refuses(change):
    from palloc.spec import ConfigError, platform

    with pytest.raises(ConfigError, match=next(iter(change)).replace("go_version", "Go version")):
        platform("linux/amd64").replace(**change)


def test_the_hypothetical_configurations_of_the_manifest_stay_accepted():
    from palloc.spec import hypothetical

    assert hypothetical("linux/amd64", heap_addr_bits=57).heap_addr_bits == 57
    assert hypothetical("linux/amd64", summary_level_bits=4).log_max_packed_value == 25
    assert hypothetical("js/wasm", go_version="1.25").palloc_chunk_pages == 512
