"""`palloc check` runs the stages of the main job; its exit code keeps the contract: 1 when any stage
found a counterexample, 2 when one could not run and none found anything, 0 when all held."""

from __future__ import annotations

import pytest

import palloc.cli.main as cli_main


@pytest.mark.parametrize("codes,want", [((0, 0, 0), 0), ((0, 2, 0), 2), ((0, 1, 2), 1), ((2, 0, 1), 1)])
def test_the_main_job_exits_1_if_any_stage_found_a_counterexample(monkeypatch, capsys, codes, want):
    real = cli_main.main
    seen = []

    def fake(argv=None):
        if argv and argv[0] == "check":
            return real(argv)
        seen.append(argv[0])
        return codes[len(seen) - 1]

    monkeypatch.setattr(cli_main, "main", fake)
    assert real(["check", "--goarch", "amd64", "--goarch", "386", "--seconds", "1"]) == want
    assert seen == ["prove", "fuzz", "fuzz"]
