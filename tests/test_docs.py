"""The repository stands on its own: no file refers to notes its users do not have, and every
historical-bug label (B1, B2, ...) used anywhere is defined in spec/BUGS.md.

The forbidden names are built from pieces, so that this file does not contain them itself.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = re.compile("|".join([
    re.escape(".." + "/shared"), re.escape("shared" + "/reference"), re.escape("STYLE" + ".md"),
    re.escape("historical" + "-bugs"), "memo" + r"('s| §| [Ss]ection| Appendix)", re.escape("platform_constants" + ".json"),
    r"\b[Ii]ssue[ -]\d+\b",  # the project's own issue tracker, which users do not have
]))
LABEL = re.compile(r"\bB(\d{1,2})\b")
DEFINITION = re.compile(r"^\| B(\d{1,2}) \|", re.M)


def text_files(root: Path) -> list[Path]:
    """The files git tracks below root (every file, outside a checkout), text only."""
    try:
        names = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
        files = [root / n for n in names.decode().split("\0") if n]
    except (OSError, subprocess.CalledProcessError):
        files = [p for p in root.rglob("*") if p.is_file() and ".git" not in p.parts and ".venv" not in p.parts]
    out = []
    for f in files:
        try:
            data = f.read_bytes()
        except OSError:  # tracked but deleted in the working tree
            continue
        if b"\0" not in data[:8192]:
            out.append(f)
    return out


def outside_references(root: Path) -> list[str]:
    """Returns `file:line: text` for every mention of something outside the repository."""
    bad = []
    for f in text_files(root):
        for i, line in enumerate(f.read_text(errors="replace").splitlines(), 1):
            m = FORBIDDEN.search(line)
            if m:
                bad.append(f"{f.relative_to(root)}:{i}: {m.group(0)}")
    return bad


def undefined_labels(root: Path) -> list[str]:
    """Returns `file:line: Bn` for every bug label used but not defined in spec/BUGS.md."""
    bugs = root / "spec" / "BUGS.md"
    defined = set(DEFINITION.findall(bugs.read_text())) if bugs.exists() else set()
    bad = []
    for f in text_files(root):
        for i, line in enumerate(f.read_text(errors="replace").splitlines(), 1):
            bad += [f"{f.relative_to(root)}:{i}: B{n}" for n in LABEL.findall(line) if n not in defined]
    return bad


def test_no_file_refers_to_anything_outside_the_repository():
    assert outside_references(ROOT) == []


def test_every_bug_label_used_is_defined_once_in_bugs_md():
    labels = DEFINITION.findall((ROOT / "spec" / "BUGS.md").read_text())
    assert labels == [str(n) for n in range(1, 19)]
    assert undefined_labels(ROOT) == []


def test_seeded_outside_references_and_undefined_labels_are_caught(tmp_path):
    """The broken variant: each kind of mention, and a label BUGS.md lacks, must be reported."""
    (tmp_path / "spec").mkdir()
    (tmp_path / "spec" / "BUGS.md").write_text("| label | bug |\n|---|---|\n| B1 | one |\n| B2 | two |\n")
    seeded = ["see ../" + "shared/notes", "STYLE" + ".md habit 10", "historical" + "-bugs.md",
              "memo" + " §1.2", "the memo" + "'s Appendix A", "Issue" + " 7", "issue" + "-12 item"]
    (tmp_path / "a.md").write_text("\n".join(seeded) + "\nB1 and B2 are fine, B3 is not\n")
    (tmp_path / "b.bin").write_bytes(b"\0" + ("STYLE" + ".md B9").encode())  # binary: not read
    assert [b.split(": ", 1)[0] for b in outside_references(tmp_path)] == [f"a.md:{i}" for i in range(1, 8)]
    assert undefined_labels(tmp_path) == ["a.md:8: B3"]
