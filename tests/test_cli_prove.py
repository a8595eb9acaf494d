"""`palloc prove`: exit codes, --config, --json, and counterexamples printed in the domain's terms."""

from __future__ import annotations

import json

from palloc.cli.main import main


def test_prove_packing_on_default_platform_exits_0(capsys):
    assert main(["prove", "--only", "packing.*", "--jobs", "1"]) == 0
    assert "proved" in capsys.readouterr().out


def test_prove_config_with_summary_level_bits_4_finds_packing_counterexample(tmp_path, capsys):
    cfg = tmp_path / "slb4.toml"
    cfg.write_text('base = "linux/amd64"\nsummary_level_bits = 4\n')
    assert main(["prove", "--config", str(cfg), "--only", "packing.*", "--jobs", "1"]) == 1
    out = capsys.readouterr().out
    assert "counterexample" in out and "75 bits of 63" in out


def test_prove_config_with_57_bit_heap_is_proved(tmp_path):
    cfg = tmp_path / "la57.toml"
    cfg.write_text('base = "linux/amd64"\nheap_addr_bits = 57\n')
    assert main(["prove", "--config", str(cfg), "--only", "addresses.*", "--jobs", "1"]) == 0


def test_prove_malformed_config_is_a_one_line_usage_error(tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("base = linux\n")
    assert main(["prove", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("palloc prove:") and "\n" not in err


def test_prove_config_without_base_or_with_unknown_key_exits_2(tmp_path):
    a = tmp_path / "a.toml"
    a.write_text("heap_addr_bits = 57\n")
    b = tmp_path / "b.toml"
    b.write_text('base = "linux/amd64"\nheap_bits = 57\n')
    assert main(["prove", "--config", str(a)]) == 2
    assert main(["prove", "--config", str(b)]) == 2


def test_prove_broken_json_reports_expected_counterexamples(capsys):
    assert main(["prove", "--broken", "--only", "merge.broken_*", "--json", "--jobs", "1"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] and {r["verdict"] for r in doc["results"]} == {"counterexample"}
    assert all(r["expected"] == "counterexample" for r in doc["results"])


def test_prove_unknown_on_timeout_fails_the_run(capsys):
    assert main(["prove", "--only", "alloc_is_address_ordered_first_fit", "--timeout", "0.01", "--jobs", "1"]) == 1
    out = capsys.readouterr().out
    assert "unknown" in out and "FAILED" in out


def test_prove_broken_text_marks_each_lines_expected_verdict_as_the_json_does(capsys):
    argv = ["prove", "--broken", "--only", "packing.*", "--jobs", "1"]
    assert main(argv) == 0
    lines = [l for l in capsys.readouterr().out.splitlines() if l.split()[:1] in (["proved"], ["counterexample"])]
    assert main(argv + ["--json"]) == 0
    want = {r["obligation"]: r["expected"] for r in json.loads(capsys.readouterr().out)["results"]}
    assert lines and len(lines) == len(want)
    for l in lines:
        name = l.split()[3]
        assert l.endswith(f"(expected {want[name]}: as expected)"), l
    assert any("expected counterexample" in l for l in lines)


def test_prove_broken_text_says_which_line_is_not_as_expected(capsys, monkeypatch):
    # The mark's broken variant: a manifest expecting the variant to be proved makes its line say so.
    from palloc.proofs import runner

    monkeypatch.setattr(runner, "expected_verdict", lambda m, q, p: "proved")
    assert main(["prove", "--broken", "--only", "packing.broken_*", "--jobs", "1"]) == 1
    out = capsys.readouterr().out
    assert "(expected proved: NOT AS EXPECTED)" in out and "FAILED packing.broken_" in out
