"""Every GOARCH's target (goref/targets.py): names and lists, how it runs here, what a missing
emulator says, and the model's platform taken from a helper's own constants."""

from __future__ import annotations

import dataclasses

import pytest

from palloc.goref import targets
from palloc.spec.errors import PallocError


def test_goarch_lists_take_names_commas_and_all_in_order_without_repeats():
    assert targets.parse_goarches(["arm64,mips", "arm64", "386"], ["amd64"]) == ["arm64", "mips", "386"]
    assert targets.parse_goarches(None, ["amd64", "386"]) == ["amd64", "386"]
    every = targets.parse_goarches(["all"], ["amd64"])
    assert every[:2] == ["amd64", "386"] and set(every) <= set(targets.ALL)
    assert set(every) == {n for n in targets.ALL if targets.target(n).runnable}


def test_an_unknown_goarch_is_one_line_naming_the_known_ones():
    with pytest.raises(PallocError) as e:
        targets.parse_goarches(["arm65"], ["amd64"])
    assert "arm65" in str(e.value) and "mips64le" in str(e.value) and "\n" not in str(e.value)


def test_every_linux_goarch_of_the_toolchain_and_both_wasm_ports_are_targets():
    want = {"amd64", "386", "arm64", "arm", "ppc64le", "ppc64", "s390x", "riscv64", "loong64", "mips", "mipsle",
            "mips64", "mips64le", "wasm", "wasip1"}
    assert set(targets.ALL) == want
    assert targets.target("wasm").goos == "js" and targets.target("wasip1").goos == "wasip1"


def test_a_missing_qemu_says_how_to_install_it_before_any_build(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no qemu-* here
    t = targets.target("arm64")
    assert not t.runnable and "apt-get install qemu-user" in t.why and "qemu-aarch64" in t.why
    with pytest.raises(PallocError) as e:
        targets.require_runnable(["amd64", "arm64"])
    assert "apt-get install qemu-user" in str(e.value)
    assert targets.target("amd64").runnable  # native needs nothing
    assert "arm64" not in targets.parse_goarches(["all"], [])
    assert "arm64" in [t.name for t in targets.skipped_goarches(["all"])]


def test_a_missing_qemu_is_exit_2_and_one_line_from_fuzz(monkeypatch, tmp_path, capsys):
    from palloc.cli.main import main

    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["fuzz", "--goarch", "amd64,arm64", "--seconds", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "qemu-user" in err[0]


def test_a_helper_for_a_missing_emulator_is_refused_before_it_is_built(monkeypatch, tmp_path):
    from palloc.goref import build
    from palloc.goref.driver import GoHelper

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(build, "build_helper", lambda *a, **k: pytest.fail("built a helper it cannot run"))
    with pytest.raises(PallocError, match="qemu-user"):
        GoHelper(goarch="s390x")


def test_the_platforms_the_table_lacks_are_their_other_endian_stand_ins():
    from palloc.goref.fuzz import goarch_platform

    for name, stand_in in (("ppc64", "ppc64le"), ("mips64le", "mips64")):
        p, q = goarch_platform(name), goarch_platform(stand_in)
        assert p.name == f"linux/{name}" and dataclasses.replace(p, name=q.name) == q


def _as_helper(p) -> dict:
    """A helper's "constants" answer for platform p (hex strings for the big ones, as it sends)."""
    d = {k: (hex(v) if isinstance(v, int) and v >= 1 << 53 else v) for k, v in p.as_dict().items()
         if k not in ("name", "go_version")}
    return {**d, "pageAlloc64Bit": int(p.is_64bit_page_alloc), "kind": "ok", "version": "go1.27.3"}


@pytest.mark.parametrize("goarch", ["amd64", "mips", "wasm", "ppc64"])
def test_the_platform_made_from_a_helpers_constants_is_the_tables(goarch):
    from palloc.goref.fuzz import GOARCH_PLATFORM, goarch_platform

    want = goarch_platform(goarch)
    got, diffs = targets.helper_platform(_as_helper(want), GOARCH_PLATFORM[goarch], "go1.27.3")
    assert diffs == [] and got == want


def test_a_helper_constant_that_differs_from_the_table_is_kept_and_listed():
    from palloc.goref.fuzz import goarch_platform

    table = goarch_platform("arm64")
    c = _as_helper(dataclasses.replace(table, name="hypothetical", heap_addr_bits=47))  # a runtime with another heapAddrBits
    got, diffs = targets.helper_platform(c, "linux/arm64", "1.27")
    assert got.heap_addr_bits == 47  # the model follows the runtime ...
    assert {"name": "heapAddrBits", "helper": 47, "table": 48} in diffs  # ... and says where it differs


def test_a_host_page_size_is_the_runtimes_not_a_difference():
    from palloc.goref.fuzz import goarch_platform

    table = goarch_platform("ppc64le")  # the table's usual 64 KiB
    got, diffs = targets.helper_platform(_as_helper(table.replace(phys_page_size=4096)), "linux/ppc64le", "1.27")
    assert got.phys_page_size == 4096 and diffs == []
