"""goref/patch.py: applying runtime patches to copies of a GOROOT, and its one-line errors.

These tests use a small fake GOROOT in a temporary directory; they need git but no Go toolchain.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from palloc.goref import patch as P
from palloc.spec.errors import PallocError

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git apply is needed; install git")

BITS = """package runtime

func (b *pallocBits) find(npages uintptr, searchIdx uint) (uint, uint) {
	if npages == 1 {
		addr := b.find1(searchIdx)
		return addr, addr
	} else if npages <= 64 {
		return b.findSmallN(npages, searchIdx)
	}
	return b.findLargeN(npages, searchIdx)
}
"""
CACHE = """package runtime

func (p *pageAlloc) allocToCache() pageCache {
	p.searchAddr = offAddr{c.base + pageSize*(pageCachePages-1)}
	return c
}
"""


@pytest.fixture
def goroot(tmp_path) -> Path:
    g = tmp_path / "goroot"
    (g / "src" / "runtime").mkdir(parents=True)
    (g / "src" / "runtime" / "mpallocbits.go").write_text(BITS)
    (g / "src" / "runtime" / "mpagecache.go").write_text(CACHE)
    (g / "src" / "os").mkdir()
    (g / "src" / "os" / "file.go").write_text("package os\n")
    return g


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def diff_of(goroot: Path, rel: str, old: str, new: str) -> str:
    text = (goroot / rel).read_text()
    assert text.count(old) == 1
    return P.unified_diff(goroot, rel, text.replace(old, new))


def test_clean_apply_produces_overlay_with_patched_copy(goroot, tmp_path):
    d = diff_of(goroot, "src/runtime/mpallocbits.go", "return addr, addr\n", "return addr, addr+1\n")
    ov = P.apply_patch_text(d, goroot, tmp_path / "out")
    assert set(ov.files) == {"src/runtime/mpallocbits.go"}
    patched = Path(ov.files["src/runtime/mpallocbits.go"]).read_text()
    assert "return addr, addr+1\n" in patched and patched.count("\n") == BITS.count("\n")
    doc = ov.go_overlay_json()
    assert doc == {"Replace": {str(goroot.resolve() / "src/runtime/mpallocbits.go"): ov.files["src/runtime/mpallocbits.go"]}}


def test_patch_written_by_git_diff_in_a_checkout_applies(goroot, tmp_path):
    d = (
        "diff --git a/src/runtime/mpagecache.go b/src/runtime/mpagecache.go\n"
        "index 0123456..89abcde 100644\n"
        "--- a/src/runtime/mpagecache.go\n"
        "+++ b/src/runtime/mpagecache.go\n"
        "@@ -3,4 +3,4 @@ package runtime\n"
        " func (p *pageAlloc) allocToCache() pageCache {\n"
        "-\tp.searchAddr = offAddr{c.base + pageSize*(pageCachePages-1)}\n"
        "+\tp.searchAddr = offAddr{c.base + pageSize*pageCachePages}\n"
        " \treturn c\n"
        " }\n"
    )
    ov = P.apply_patch_text(d, goroot, tmp_path / "out")
    assert "pageSize*pageCachePages}" in Path(ov.files["src/runtime/mpagecache.go"]).read_text()


def test_goroot_is_untouched_and_no_temporaries_are_left(goroot, tmp_path):
    before = tree_digest(goroot)
    out = tmp_path / "out"
    good = diff_of(goroot, "src/runtime/mpallocbits.go", "return addr, addr\n", "return addr, addr+1\n")
    bad = good.replace("return addr, addr\n", "return addr, addrX\n")
    P.apply_patch_text(good, goroot, out)
    with pytest.raises(PallocError):
        P.apply_patch_text(bad, goroot, out)
    assert tree_digest(goroot) == before
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert leftovers == []
    assert len(list(out.iterdir())) == 1  # only the successful overlay directory


def test_non_applying_hunk_is_named_by_file_and_number(goroot, tmp_path):
    d = diff_of(goroot, "src/runtime/mpallocbits.go", "return addr, addr\n", "return addr, addr+1\n")
    # The file drifted since the diff was made: the hunk's context no longer matches.
    (goroot / "src/runtime/mpallocbits.go").write_text(BITS.replace("addr := b.find1", "addr := b.findOne"))
    with pytest.raises(PallocError) as e:
        P.apply_patch_text(d, goroot, tmp_path / "out")
    msg = str(e.value)
    assert "does not apply: src/runtime/mpallocbits.go hunk 1" in msg and "\n" not in msg


def test_second_hunk_failure_says_hunk_2(tmp_path):
    g = tmp_path / "g"
    (g / "src/runtime").mkdir(parents=True)
    lines = [f"// line {i}\n" for i in range(40)]
    (g / "src/runtime/x.go").write_text("".join(lines))
    new = lines.copy()
    new[2] = "// changed 2\n"
    new[30] = "// changed 30\n"
    d = P.unified_diff(g, "src/runtime/x.go", "".join(new))
    assert d.count("@@ -") == 2
    stale = lines.copy()
    stale[31] = "// drifted\n"
    (g / "src/runtime/x.go").write_text("".join(stale))
    with pytest.raises(PallocError, match=r"does not apply: src/runtime/x.go hunk 2 \(at old line 28\)"):
        P.apply_patch_text(d, g, tmp_path / "out")


def test_file_outside_runtime_package_is_refused(goroot, tmp_path):
    d = P.unified_diff(goroot, "src/os/file.go", "package os\n// x\n")
    with pytest.raises(PallocError, match=r"touches src/os/file.go, outside the runtime package"):
        P.apply_patch_text(d, goroot, tmp_path / "out")


def test_runtime_subpackage_is_refused(goroot, tmp_path):
    d = (
        "--- a/src/runtime/internal/x/y.go\n+++ b/src/runtime/internal/x/y.go\n@@ -1 +1 @@\n-a\n+b\n"
    )
    with pytest.raises(PallocError, match="outside the runtime package"):
        P.apply_patch_text(d, goroot, tmp_path / "out")


@pytest.mark.parametrize("text", ["", "   \n\n"])
def test_empty_diff_is_refused(goroot, tmp_path, text):
    with pytest.raises(PallocError, match="empty diff"):
        P.apply_patch_text(text, goroot, tmp_path / "out")


@pytest.mark.parametrize(
    "text, words",
    [
        ("this is not a diff\n", "no file headers"),
        ("--- a/src/runtime/mpallocbits.go\n+++ b/src/runtime/mpallocbits.go\n@@ -1,3 +1,3 @@\n package runtime\n-x\n", "shorter or longer"),
        ("--- a/src/runtime/mpallocbits.go\n+++ b/src/runtime/mpallocbits.go\n@@ bogus @@\n", "bad hunk header"),
    ],
)
def test_malformed_diff_is_refused_with_one_line(goroot, tmp_path, text, words):
    with pytest.raises(PallocError) as e:
        P.apply_patch_text(text, goroot, tmp_path / "out")
    assert "malformed diff" in str(e.value) and words in str(e.value) and "\n" not in str(e.value)


def test_same_patch_twice_reuses_one_overlay(goroot, tmp_path):
    d = diff_of(goroot, "src/runtime/mpallocbits.go", "return addr, addr\n", "return addr, addr+1\n")
    a = P.apply_patch_text(d, goroot, tmp_path / "out")
    b = P.apply_patch_text(d, goroot, tmp_path / "out")
    assert a == b and len(list((tmp_path / "out").iterdir())) == 1


def test_overlay_json_written_atomically(goroot, tmp_path):
    d = diff_of(goroot, "src/runtime/mpallocbits.go", "return addr, addr\n", "return addr, addr+1\n")
    ov = P.apply_patch_text(d, goroot, tmp_path / "out")
    path = ov.write_json(tmp_path / "ov" / "overlay.json")
    assert json.loads(path.read_text()) == ov.go_overlay_json()
    assert [p.name for p in path.parent.iterdir()] == ["overlay.json"]


def test_modified_goroot_overlay_lists_exactly_the_differing_runtime_files(goroot, tmp_path):
    mod = tmp_path / "mod"
    shutil.copytree(goroot, mod)
    (mod / "src/runtime/mpagecache.go").write_text(CACHE.replace("pageCachePages-1", "pageCachePages"))
    (mod / "src/runtime/new_file.go").write_text("package runtime\n")
    (mod / "src/runtime/mpallocbits.go").unlink()
    (mod / "src/os/file.go").write_text("package os\n// changed outside runtime: ignored\n")
    ov = P.overlay_from_goroot(mod, goroot)
    assert ov.files == {
        "src/runtime/mpagecache.go": str((mod / "src/runtime/mpagecache.go").resolve()),
        "src/runtime/new_file.go": str((mod / "src/runtime/new_file.go").resolve()),
        "src/runtime/mpallocbits.go": "",
    }


def test_identical_goroot_is_refused(goroot):
    with pytest.raises(PallocError, match="identical"):
        P.overlay_from_goroot(goroot, goroot)


# --- the command line: errors are one line and exit 2, before any Go build ---------------------


def _cli(argv, capsys):
    from palloc.cli.main import main

    code = main(argv)
    return code, capsys.readouterr().err


def test_verify_change_malformed_patch_exits_2_with_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.patch"
    bad.write_text("not a diff\n")
    code, err = _cli(["verify-change", str(bad)], capsys)
    assert code == 2 and "malformed diff" in err and err.count("\n") == 1


def test_verify_change_outside_runtime_exits_2(tmp_path, capsys):
    bad = tmp_path / "os.patch"
    bad.write_text("--- a/src/os/file.go\n+++ b/src/os/file.go\n@@ -1 +1 @@\n-package os\n+package os2\n")
    code, err = _cli(["verify-change", str(bad)], capsys)
    assert code == 2 and "outside the runtime package" in err


def test_verify_change_needs_exactly_one_source(capsys):
    code, err = _cli(["verify-change"], capsys)
    assert code == 2 and "exactly one of PATCH or --goroot" in err


def test_patched_runtime_dying_on_a_restart_is_a_start_up_breaks_verdict(monkeypatch):
    """A patched helper that starts once and then dies at a restart's ping gives `breaks`, not an error."""
    from palloc.goref import verdict as V
    from palloc.goref import fuzz
    from palloc.goref.driver import HelperStartError

    death = {"kind": "go-throw", "msg": "sysMemStat overflow"}

    def dies(*a, **k):
        raise HelperStartError("the Go helper h did not answer a ping (go-throw: sysMemStat overflow); rebuild it", death)

    class TC:
        version, goos = "go1.27.3", "linux"

    class Runner:  # the campaign's runner, as far as a campaign that never starts sees it
        stats = fuzz.Stats()

        def smallest_failure(self):
            return None

    monkeypatch.setattr("palloc.goref.lockstep.run_lockstep_campaign", dies)
    monkeypatch.setattr(fuzz, "Lockstep", lambda *a, **k: Runner())
    monkeypatch.setattr("palloc.goref.go_side.GoSide", lambda *a, **k: None)
    c = V._fuzz_check(None, "amd64", TC(), {}, 1.0, 0, Path("unused"), 0.0)
    assert (c.name, c.verdict) == ("start-up", "breaks"), c
    assert "sysMemStat overflow" in c.detail and "rebuild" not in c.detail
    assert c.evidence["crash"] == death
