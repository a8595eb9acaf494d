"""Bad input: each is exit 2 with one line saying what is wrong, before
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


# --- items 11 and 14: replay of a case file that is not a valid case ---------------------------

CASE = {"format": "palloc-fuzz-case/1", "goarch": "amd64", "go_version": "1.27.3", "init": None,
        "ops": [{"op": "grow", "base": 0x3000000000, "size": 0x400000}, {"op": "alloc", "npages": 1}]}

BAD_CASES = {
    "go_version a number": ({"go_version": 5}, "go_version"),
    "go_version not modelled": ({"go_version": "1.99"}, "Go version"),
    "goarch a list": ({"goarch": ["amd64"]}, "goarch"),
    "init range past the chunk": ({"init": {"chunks": {"0x200c000": [[600, 10]]}}}, "init"),
    "init range negative": ({"init": {"chunks": {"0x200c000": [[-1, 10]]}}}, "init"),
    "init range a string": ({"init": {"chunks": {"0x200c000": "abc"}}}, "init"),
    "init range a triple": ({"init": {"chunks": {"0x200c000": [[1, 2, 3]]}}}, "init"),
    "init chunk not an index": ({"init": {"chunks": {"zero": [[0, 1]]}}}, "init"),
    "init chunk outside the address space": ({"init": {"chunks": {hex(1 << 40): [[0, 1]]}}}, "init"),
    "init scav a list": ({"init": {"chunks": {}, "scav": [1]}}, "init"),
    "host unknown key": ({"host": {"cpus": 2}}, "host"),
    "host page size not a power of two": ({"host": {"phys_page_size": 3000}}, "host"),
    "model_variant a number": ({"model_variant": 3}, "model_variant"),
    "npages 2**64": ({"ops": [{"op": "alloc", "npages": 1 << 64}]}, "npages"),
    "npages past a 32-bit uintptr": ({"goarch": "386", "ops": [{"op": "alloc", "npages": 1 << 32}]}, "npages"),
    "bitmap wider than a chunk": ({"ops": [{"op": "bits_summarize", "bits": 1 << 512}]}, "bits"),
    "grow size 2**70": ({"ops": [{"op": "grow", "base": 0x3000000000, "size": 1 << 70}]}, "size"),
}


@pytest.mark.parametrize("name", sorted(BAD_CASES))
def test_replay_of_a_malformed_case_is_one_line_naming_the_field(palloc, tmp_path, name):
    change, field = BAD_CASES[name]
    f = tmp_path / "case.json"
    f.write_text(json.dumps({**CASE, **change}))
    line = palloc("replay", f, "--goroot", NO_GO).error_line()
    assert str(f) in line and field in line and NO_GO not in line


def test_replay_of_a_file_that_is_not_utf8_is_one_line(palloc, tmp_path):
    f = tmp_path / "case.json"
    f.write_bytes(b'\xff\xfe{"format": "palloc-fuzz-case/1"}')
    line = palloc("replay", f, "--goroot", NO_GO).error_line()
    assert str(f) in line and "UTF-8" in line


def test_a_valid_case_gets_as_far_as_the_toolchain(palloc, tmp_path):
    f = tmp_path / "case.json"
    f.write_text(json.dumps(CASE))
    assert NO_GO in palloc("replay", f, "--goroot", NO_GO).error_line()


# --- item 16: patches, toolchains and files -------------------------------------------------

LINE1 = "// Copyright 2019 The Go Authors. All rights reserved."
PATCHES = {
    "no a/ b/ prefixes": (f"--- src/runtime/mpagealloc.go\n+++ src/runtime/mpagealloc.go\n@@ -1,1 +1,1 @@\n"
                          f"-{LINE1}\n+{LINE1}!\n", "git diff"),
    "renamed out of the runtime": ("diff --git a/src/runtime/mpagealloc.go b/src/runtime/mpagealloc.go\n"
                                   "similarity index 100%\nrename from src/runtime/mpagealloc.go\n"
                                   "rename to src/os/mpagealloc.go\n", "src/os/mpagealloc.go"),
    "copied out of the runtime": ("diff --git a/src/runtime/mpagealloc.go b/src/runtime/mpagealloc.go\n"
                                  "similarity index 100%\ncopy from src/runtime/mpagealloc.go\n"
                                  "copy to src/os/mpagealloc.go\n", "src/os/mpagealloc.go"),
}


@pytest.mark.parametrize("name", sorted(PATCHES))
def test_verify_change_refuses_the_patch_before_looking_for_a_toolchain(palloc, tmp_path, name):
    text, says = PATCHES[name]
    f = tmp_path / "p.patch"
    f.write_text(text)
    line = palloc("verify-change", f, "--base-goroot", NO_GO).error_line()
    assert str(f) in line and says in line and NO_GO not in line


@pytest.mark.parametrize("verb", [["fuzz"], ["replay", "case.json"], ["goref", "info"], ["goref", "build"],
                                  ["goref", "constants"], ["bench", "--native"], ["check"]])
def test_an_empty_goroot_is_an_error_not_the_default_toolchain(palloc, tmp_path, monkeypatch, verb):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "case.json").write_text(json.dumps(CASE))
    line = palloc(*verb, "--goroot", "").error_line()
    assert "--goroot" in line and "empty" in line


def test_find_toolchain_refuses_an_empty_goroot():
    from palloc.goref.toolchain import find_toolchain
    from palloc.spec.errors import PallocError

    with pytest.raises(PallocError, match="empty"):
        find_toolchain("")


def fake_goroot(root, version_file: str | None, go_script: str | None, runtime: bool = True):
    """Makes a folder that looks like a GOROOT: bin/go (a shell script), VERSION, src/runtime."""
    (root / "bin").mkdir(parents=True)
    if go_script is not None:
        (root / "bin" / "go").write_text("#!/bin/sh\n" + go_script)
        (root / "bin" / "go").chmod(0o755)
    if version_file is not None:
        (root / "VERSION").write_text(version_file)
    if runtime:
        (root / "src" / "runtime").mkdir(parents=True)
        for name in ("mpagealloc.go", "export_test.go"):
            (root / "src" / "runtime" / name).write_text("package runtime\n")
    return root


@pytest.mark.parametrize("kind", ["go that is not a program", "go that prints garbage", "a VERSION that is no version"])
def test_goref_info_refuses_a_folder_that_is_not_a_go_toolchain(palloc, tmp_path, kind):
    env_answer = 'echo "$GOROOT"; echo %s; echo linux; echo amd64\n'
    root = {
        "go that is not a program": lambda: fake_goroot(tmp_path / "g", "go1.27.3\n", None),
        "go that prints garbage": lambda: fake_goroot(tmp_path / "g", "go1.27.3\n", env_answer % "hello"),
        "a VERSION that is no version": lambda: fake_goroot(tmp_path / "g", "banana\n", env_answer % "banana"),
    }[kind]()
    if kind == "go that is not a program":
        (root / "bin" / "go").write_text("not a program")
        (root / "bin" / "go").chmod(0o755)
    line = palloc("goref", "info", "--goroot", root).error_line()
    assert str(root) in line and ("Go toolchain" in line or "version" in line)


def test_case_files_are_written_readable_by_others_as_umask_allows(tmp_path):
    import os

    from palloc.goref.files import write_atomic

    old = os.umask(0o022)
    try:
        assert os.stat(write_atomic(tmp_path / "a.json", "{}")).st_mode & 0o777 == 0o644
        os.umask(0o077)
        assert os.stat(write_atomic(tmp_path / "b.json", "{}")).st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


def test_verify_change_writes_cases_where_fuzz_does():
    from palloc.cli.main import build_parser

    sub = build_parser()._subparsers._group_actions[0].choices
    fuzz = sub["fuzz"].get_default("failures")
    assert str(sub["verify-change"].get_default("replay_dir")) == fuzz == "palloc-failures"
