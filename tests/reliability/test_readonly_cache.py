"""A cache palloc cannot write: every verb that builds, prunes or patches says in
one line to set PALLOC_CACHE_DIR to a writable folder (exit 2); a helper already in a read-only
cache is still used.

The verbs that start a helper run in a child process: in-process, fuzz.session keeps helpers
started by earlier tests and would never look at the cache.

The cache is a read-only tmpfs (EROFS even for root), a folder under one that cannot be made, or
a file where the folder should be (ENOTDIR/EEXIST).
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from palloc.goref.fuzz import Case
from palloc.goref import ops as O

PATCH = """diff --git a/src/runtime/mpagealloc.go b/src/runtime/mpagealloc.go
--- a/src/runtime/mpagealloc.go
+++ b/src/runtime/mpagealloc.go
@@ -1,1 +1,1 @@
-// Copyright 2019 The Go Authors. All rights reserved.
+// Copyright 2019 The Go Authors. All rights reserved!
"""


@pytest.fixture(params=["read-only mount", "under a read-only mount", "a file"])
def bad_cache(request, tmp_path, monkeypatch):
    """Points PALLOC_CACHE_DIR at a cache that cannot be written; returns it."""
    if request.param == "a file":
        d = tmp_path / "cache"
        d.write_text("a file where the cache folder should be")
    else:
        ro = request.getfixturevalue("unwritable_dir")
        d = ro if request.param == "read-only mount" else ro / "palloc"
    monkeypatch.setenv("PALLOC_CACHE_DIR", str(d))
    return d


def assert_says_set_the_cache_dir(line: str, d) -> None:
    assert "PALLOC_CACHE_DIR" in line and str(d) in line, line


def test_goref_cache_prune_with_an_unwritable_cache_is_one_line(palloc, bad_cache):
    assert_says_set_the_cache_dir(palloc("goref", "cache", "--prune").error_line(), bad_cache)


def test_goref_cache_listing_reads_an_unwritable_cache(palloc, bad_cache):
    r = palloc("goref", "cache")
    assert r.code == 0 and "0 helper(s)" in r.out, r.err


@pytest.mark.go
def test_goref_build_with_an_unwritable_cache_is_one_line(palloc_process, bad_cache):
    assert_says_set_the_cache_dir(palloc_process("goref", "build").error_line(), bad_cache)


@pytest.mark.go
def test_fuzz_with_an_unwritable_cache_is_one_line(palloc_process, bad_cache, tmp_path):
    line = palloc_process("fuzz", "--seconds", "1", "--jobs", "1", "--failures", tmp_path / "f").error_line()
    assert_says_set_the_cache_dir(line, bad_cache)


@pytest.mark.go
def test_replay_with_an_unwritable_cache_is_one_line(palloc_process, bad_cache, tmp_path):
    f = tmp_path / "case.json"
    f.write_text(json.dumps(Case("amd64", "1.27.3", None, [O.Grow(0x3000000000, 0x400000)]).to_json()))
    assert_says_set_the_cache_dir(palloc_process("replay", f).error_line(), bad_cache)


@pytest.mark.go
def test_verify_change_with_an_unwritable_cache_is_one_line(palloc_process, bad_cache, tmp_path):
    f = tmp_path / "tiny.patch"
    f.write_text(PATCH)
    line = palloc_process("verify-change", f, "--seconds", "1", "--goarch", "amd64", "--replay-dir", tmp_path / "r").error_line()
    assert_says_set_the_cache_dir(line, bad_cache)


@pytest.mark.go
def test_a_helper_already_in_a_read_only_cache_is_used(palloc_process, need_helper, tmp_path, monkeypatch):
    runner = need_helper("amd64")  # built in the user's cache

    from palloc.goref.build import helper_path
    from palloc.goref.toolchain import find_toolchain

    built = [helper_path(find_toolchain(None), "amd64")]  # the one replay uses (the cache may hold many)
    assert built[0].is_file()
    mount = shutil.which("mount")
    (tmp_path / "c").mkdir()
    if mount is None or subprocess.run([mount, "-t", "tmpfs", "-o", "size=512m", "tmpfs", str(tmp_path / "c")],
                                       capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        (tmp_path / "c" / "helpers").mkdir()
        for b in built:
            shutil.copy2(b, tmp_path / "c" / "helpers" / b.name)
        subprocess.run([mount, "-o", "remount,ro", str(tmp_path / "c")], check=True)
        monkeypatch.setenv("PALLOC_CACHE_DIR", str(tmp_path / "c"))
        f = tmp_path / "case.json"
        f.write_text(json.dumps(Case("amd64", runner.go_version, None, [O.Grow(0x3000000000, 0x400000), O.Alloc(1)]).to_json()))
        r = palloc_process("replay", f)
        assert r.code == 0 and "agree" in r.out, r.err
    finally:
        subprocess.run(["umount", str(tmp_path / "c")], capture_output=True)
