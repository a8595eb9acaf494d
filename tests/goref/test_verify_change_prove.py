"""verify-change's translation-validation stage (proofs/tv.py) and `--prove-only`: a patch to a pure
function of the page allocator is proved equivalent or refuted in seconds; what palloc does not
translate is said, and leaves the verdict to the differential."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from palloc.cli.main import main

pytestmark = pytest.mark.go
MUTANTS = Path(str(resources.files("palloc.goref.mutants")))
DATA = Path(__file__).parent.parent / "reliability" / "data"


def _run(capsys, *argv) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["verify-change", *map(str, argv), "--goarch", "amd64", "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def _tv(rep) -> dict:
    (c,) = [c for c in rep["checks"] if c["name"] == "translation"]
    return c["evidence"]["tv"]


def test_prove_only_proves_an_equivalent_mutant_and_exits_0(capsys):
    # findLargeN's exact-fit mutant (FINDINGS F19): equivalent, now by proof.
    code, rep = _run(capsys, MUTANTS / "30-n-findlargen-exact-fit-fails.patch", "--prove-only")
    assert code == 0 and rep["verdict"] == "proved equivalent", rep
    fs = {f["name"]: f["verdict"] for f in _tv(rep)["functions"]}
    assert fs == {"pallocBits.findLargeN": "proved", "pallocBits.find": "proved"}
    assert rep["build_seconds"] == {}  # no helper was needed


def test_prove_only_refutes_a_broken_mutant_with_an_input_the_runtime_confirms(capsys):
    code, rep = _run(capsys, MUTANTS / "27-n-findbitrange64-p-equals-n.patch", "--prove-only")
    assert code == 1 and rep["verdict"] == "breaks", rep
    f = next(f for f in _tv(rep)["functions"] if f["name"] == "findBitRange64")
    assert f["verdict"] == "counterexample" and f["confirmed"] is True
    assert f["original"] != f["patched"] and f["input"] is not None
    assert "func TestPalloctv" in f["go_test"]


def test_prove_only_on_a_function_it_does_not_translate_says_so_and_exits_2(capsys):
    code, rep = _run(capsys, DATA / "throw-find-npages5.patch", "--prove-only")
    assert code == 2 and rep["verdict"] == "undecided", rep
    (f,) = _tv(rep)["functions"]
    assert f["name"] == "pageAlloc.find" and f["verdict"] == "not in scope"


def test_an_undecided_translation_leaves_the_verdict_to_the_differential(capsys):
    # The full run: translation validation says "not in scope", the differential finds the throw.
    code, rep = _run(capsys, DATA / "throw-find-npages5.patch", "--seconds", "5", "--jobs", "1", "--no-baseline",
                     "--no-go-test")
    assert code == 1 and rep["verdict"] == "breaks"
    names = [c["name"] for c in rep["checks"]]
    assert names[0] == "translation" and "differential" in names
    assert rep["caught_by"] == ["differential"]


def test_prove_runtime_proves_the_theorems_on_the_toolchains_own_code(capsys):
    capsys.readouterr()
    code = main(["prove", "--runtime", "--only", "runtime.model_equals.offAddr*", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["ok"], out
    names = {r["obligation"] for r in out["results"]}
    assert "runtime.model_equals.offAddr.lessThan" in names and all(r["verdict"] == "proved" for r in out["results"])


def test_prove_runtime_has_no_runtime_for_a_config_platform(capsys, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('base = "linux/amd64"\nheap_addr_bits = 47\n')
    assert main(["prove", "--runtime", "--config", str(cfg)]) == 2
    assert "--runtime proves the runtime of a toolchain" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("goarch", ["arm64", "wasm"])
def test_prove_only_confirms_a_counterexample_under_the_goarchs_emulator(capsys, goarch):
    # Translated for the GOARCH's own platform (wasm is js/wasm), confirmed in its patched runtime
    # under qemu or Node.js; skipped where the emulator is missing.
    from palloc.goref.targets import target

    if not target(goarch).runnable:
        pytest.skip(f"{goarch} cannot run here: {target(goarch).why}")
    capsys.readouterr()
    code = main(["verify-change", str(MUTANTS / "27-n-findbitrange64-p-equals-n.patch"), "--goarch", goarch,
                 "--prove-only", "--json"])
    rep = json.loads(capsys.readouterr().out)
    assert code == 1, rep
    f = next(f for f in _tv(rep)["functions"] if f["name"] == "findBitRange64")
    assert f["confirmed"] is True and _tv(rep)["platform"] == target(goarch).platform
