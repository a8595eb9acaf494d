"""The helper build cache: keyed by everything that changes the binary, safe under concurrent builds.

The key and locking tests use a fake toolchain (a shell script standing in for `go`); the tests
marked `go` build the real helper.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from palloc.goref import build
from palloc.goref.toolchain import find_toolchain
from palloc.spec.errors import PallocError

FAKE_GO = r"""#!/bin/sh
# A stand-in for `go`: answers `go env ...`, and `go test -c ... -o OUT runtime` slowly.
if [ "$1" = env ] && [ "$2" = GOCACHE ]; then echo "{cache}/gocache"; exit 0; fi
if [ "$1" = env ]; then printf "%s\n" "{root}" go1.27.3 linux amd64; exit 0; fi
if [ "$1" = test ]; then
  out=""; prev=""
  for a in "$@"; do [ "$prev" = "-o" ] && out="$a"; prev="$a"; done
  echo "build GOARCH=$GOARCH" >> "{root}/builds.log"
  if [ -n "$FAKE_GO_FAIL" ]; then
    echo "# runtime_test [runtime.test]" >&2
    echo "$FAKE_GO_FAIL" >&2; exit 1
  fi
  printf 'part1-' > "$out"; sleep 1; printf 'part2' >> "$out"; exit 0
fi
exit 2
"""


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A fake toolchain and an empty palloc cache; returns the Toolchain."""
    root = tmp_path / "goroot"
    rt = root / "src" / "runtime"
    rt.mkdir(parents=True)
    (root / "bin").mkdir()
    (rt / "mpagealloc.go").write_text("package runtime // v1\n")
    (rt / "export_test.go").write_text("package runtime\n")
    go = root / "bin" / "go"
    go.write_text(FAKE_GO.replace("{root}", str(root)).replace("{cache}", str(tmp_path)))
    go.chmod(go.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PALLOC_CACHE_DIR", str(tmp_path / "cache"))
    return find_toolchain(root)


def test_key_is_stable_for_the_same_inputs(fake):
    assert build.cache_key(fake) == build.cache_key(fake)


def test_key_changes_with_goarch(fake):
    assert build.cache_key(fake, "386") != build.cache_key(fake, "amd64")


def test_key_changes_with_runtime_contents_even_at_same_size_and_mtime(fake):
    f = fake.runtime_dir / "mpagealloc.go"
    before = build.cache_key(fake)
    st = f.stat()
    f.write_text("package runtime // v2\n")  # same size
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert f.stat().st_size == st.st_size and f.stat().st_mtime_ns == st.st_mtime_ns
    assert build.cache_key(fake) != before


def test_key_changes_with_palloc_overlay_files(fake, tmp_path, monkeypatch):
    before = build.cache_key(fake)
    copy = tmp_path / "overlay"
    shutil.copytree(build.OVERLAY_DIR, copy)
    monkeypatch.setattr(build, "OVERLAY_DIR", copy)
    assert build.cache_key(fake) == before
    with open(copy / build.OVERLAY_FILES[0], "a") as f:
        f.write("\n// changed\n")
    assert build.cache_key(fake) != before


def test_key_changes_with_extra_overlay_path_and_contents(fake, tmp_path):
    patched = tmp_path / "mpagealloc.go"
    patched.write_text("package runtime // patched\n")
    plain = build.cache_key(fake)
    k1 = build.cache_key(fake, extra_overlay={"src/runtime/mpagealloc.go": str(patched)})
    k2 = build.cache_key(fake, extra_overlay={"src/runtime/mgcscavenge.go": str(patched)})
    patched.write_text("package runtime // patched again\n")
    k3 = build.cache_key(fake, extra_overlay={"src/runtime/mpagealloc.go": str(patched)})
    assert len({plain, k1, k2, k3}) == 4


def test_extra_overlay_keys_must_be_goroot_relative(fake, tmp_path):
    with pytest.raises(PallocError, match="GOROOT-relative"):
        build.cache_key(fake, extra_overlay={"/abs/src/runtime/x.go": str(tmp_path)})


def test_overlay_document_maps_goroot_paths_to_files(fake, tmp_path):
    doc = build.overlay_document(fake, {"src/runtime/mpagealloc.go": str(tmp_path / "p.go"), "src/runtime/gone.go": ""})
    r = doc["Replace"]
    assert r[str(fake.runtime_dir / "palloc_server_test.go")] == str(build.OVERLAY_DIR / "palloc_server_test.go")
    assert r[str(fake.goroot / "src/runtime/mpagealloc.go")] == str(tmp_path / "p.go")
    assert r[str(fake.goroot / "src/runtime/gone.go")] == ""


def test_build_is_cached_and_complete(fake):
    p1 = build.build_helper(fake)
    p2 = build.build_helper(fake)
    assert p1 == p2 and p1.read_text() == "part1-part2"
    assert (fake.goroot / "builds.log").read_text().count("build") == 1
    assert json.loads(Path(str(p1) + ".json").read_text())["version"] == "go1.27.3"
    assert not [p for p in p1.parent.iterdir() if p.name.startswith(".build-")]


def test_build_passes_goarch(fake):
    build.build_helper(fake, "386")
    assert (fake.goroot / "builds.log").read_text().split() == ["build", "GOARCH=386"]


def test_using_a_cached_helper_marks_it_recently_used(fake):
    tc = fake
    p = build.build_helper(tc)
    os.utime(p, (time.time() - 36000, time.time() - 36000))
    assert build.build_helper(tc) == p
    assert time.time() - p.stat().st_mtime < 3600


def test_a_build_evicts_old_helpers_but_not_itself(fake, monkeypatch):
    tc = fake
    d = build.cache_dir() / "helpers"
    monkeypatch.setenv("PALLOC_HELPER_CACHE_MB", "0")
    d.mkdir(parents=True, exist_ok=True)
    old = d / "runtime-go1.27.3-linux-amd64-old.test"
    old.write_bytes(b"\0" * 1000)
    os.utime(old, (time.time() - 86400,) * 2)
    p = build.build_helper(tc)
    assert p.exists() and not old.exists()


def test_concurrent_builds_produce_one_complete_binary(fake, tmp_path):
    code = (
        "import sys; from palloc.goref import build, toolchain;"
        f"print(build.build_helper(toolchain.find_toolchain({str(fake.goroot)!r})))"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=os.environ) for _ in range(3)]
    outs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len(set(outs)) == 1
    assert Path(outs[0]).read_text() == "part1-part2"
    assert (fake.goroot / "builds.log").read_text().count("build") == 1


def test_compile_error_names_file_and_line(fake, monkeypatch):
    monkeypatch.setenv("FAKE_GO_FAIL", "/x/src/runtime/palloc_server_test.go:42:7: undefined: Foo\n/x/y.go:1:1: other")
    with pytest.raises(PallocError) as e:
        build.build_helper(fake)
    assert "palloc_server_test.go:42: undefined: Foo (and 1 more)" in str(e.value)
    assert not build.helper_path(fake).exists()


# --- with a real toolchain ------------------------------------------------------------------


@pytest.fixture
def real_toolchain():
    try:
        return find_toolchain()
    except PallocError as e:
        pytest.skip(f"no Go toolchain ({e})")


@pytest.mark.go
def test_real_compile_error_names_the_broken_file(real_toolchain, tmp_path, monkeypatch):
    monkeypatch.setenv("PALLOC_CACHE_DIR", str(tmp_path / "cache"))
    broken = tmp_path / "palloc_broken_test.go"
    broken.write_text('package runtime_test\n\nvar pallocBroken int = "not an int"\n')
    with pytest.raises(PallocError, match=r"palloc_broken_test\.go:3: .*"):
        build.build_helper(real_toolchain, extra_overlay={"src/runtime/palloc_broken_test.go": str(broken)})


@pytest.mark.go
def test_real_build_into_an_empty_cache_runs(real_toolchain, tmp_path, monkeypatch):
    monkeypatch.setenv("PALLOC_CACHE_DIR", str(tmp_path / "cache"))
    t0 = time.monotonic()
    path = build.build_helper(real_toolchain)
    took = time.monotonic() - t0
    print(f"cold palloc cache build (Go's GOCACHE as it is): {took:.1f}s")
    req = json.dumps({"id": 1, "ops": [{"op": "ping"}]}) + "\n"
    r = subprocess.run(
        [str(path), "-test.run=^TestPallocServer$"], input=req, capture_output=True, text=True,
        env=dict(os.environ, PALLOC_SERVER="1"), timeout=60, cwd=tmp_path,
    )
    resp = json.loads(r.stdout.splitlines()[0])
    assert resp["results"][0]["version"] == real_toolchain.version


@pytest.mark.go
def test_server_skips_without_palloc_server(real_toolchain, tmp_path):
    path = build.build_helper(real_toolchain)
    env = {k: v for k, v in os.environ.items() if k != "PALLOC_SERVER"}
    r = subprocess.run([str(path), "-test.run=^TestPallocServer$", "-test.v"], capture_output=True, text=True,
                       env=env, timeout=60, cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and "--- SKIP: TestPallocServer" in r.stdout
