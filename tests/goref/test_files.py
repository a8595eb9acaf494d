"""goref/files.py: a file palloc writes is whole or absent."""

from __future__ import annotations

import pytest

from palloc.goref.files import write_atomic


def test_write_atomic_replaces_the_file_whole(tmp_path):
    p = tmp_path / "case.json"
    p.write_text("old")
    write_atomic(p, "new")
    assert p.read_text() == "new" and [x.name for x in tmp_path.iterdir()] == ["case.json"]


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path):
    p = tmp_path / "case.json"
    p.write_text("old")
    with pytest.raises(TypeError):
        write_atomic(p, 12345)  # type: ignore[arg-type]
    assert p.read_text() == "old" and [x.name for x in tmp_path.iterdir()] == ["case.json"]
