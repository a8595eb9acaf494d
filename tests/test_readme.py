"""The README's commands still match the tool: every example parses, CI runs the README's test command."""

from __future__ import annotations

import pathlib
import re
import shlex

import pytest

from palloc.cli.main import build_parser

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _code_lines() -> list[str]:
    blocks = re.findall(r"```[a-z]*\n(.*?)```", README, flags=re.S)
    return [line.strip() for b in blocks for line in b.splitlines() if line.strip()]


def _palloc_examples() -> list[str]:
    out = []
    for line in _code_lines():
        for part in line.split("&&"):
            words = shlex.split(part, comments=True)
            if words and pathlib.PurePath(words[0]).name == "palloc":
                out.append(shlex.join(words[1:]))
    return out


def _setup_commands() -> list[str]:
    return [l for l in _code_lines() if l.startswith("python3 -m venv")]


def test_readme_has_the_two_setup_commands():
    cmds = _setup_commands()
    assert len(cmds) == 2, cmds
    assert any("palloc" in c and "pytest" not in c for c in cmds)
    assert any("pytest" in c for c in cmds)


def test_ci_runs_exactly_the_readmes_test_command():
    test_cmd = next(c for c in _setup_commands() if "pytest" in c)
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_cmd in [l.strip() for l in ci]


@pytest.mark.parametrize("example", _palloc_examples())
def test_readme_example_parses_with_the_current_cli(example):
    parser = build_parser()
    try:
        args = parser.parse_args(shlex.split(example))
    except SystemExit as e:  # argparse exits 2 on an option the tool no longer has
        pytest.fail(f"`palloc {example}` no longer parses (exit {e.code})")
    assert getattr(args, "run", None), f"`palloc {example}` names no verb"
