"""Generated garbage for `palloc trace replay`: random bytes, gzip of random bytes, the trace
container with random metadata and records, and a real trace cut short or with bytes flipped.
Each is exit 2 with one line on stderr (never a traceback, never the guard's "internal error"),
or, for records that happen to form a valid trace, a replay verdict (0 or 1)."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from palloc.goref import trace as T

REAL = Path(__file__).resolve().parents[1] / "goref" / "data" / "trace" / "binarytrees-386.trace"
REAL_BYTES = REAL.read_bytes()
REAL_META, REAL_RAW = T.read_raw(REAL)

EXAMPLES = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

HEADER = struct.pack("<10Q", T.HEADER, T.GO_MAGIC, T.VERSION, 4, 8192, 4096, 2 << 20, 4 << 20, 0, 0)
WORD = st.one_of(st.sampled_from([0, 1, 7, 512, 1 << 22, 1 << 32, (1 << 64) - 1]), st.integers(0, (1 << 64) - 1))
RECORD = st.builds(lambda k, ws: struct.pack("<10Q", k, *ws), st.integers(0, 40),
                   st.lists(WORD, min_size=9, max_size=9))
METAS = st.one_of(st.just(REAL_META), st.dictionaries(st.sampled_from(["goarch", "version", "goos", "go_version"]),
                                                       st.one_of(st.integers(), st.text(max_size=8), st.just("386"))))


def container(meta, raw: bytes) -> bytes:
    return gzip.compress(T.MAGIC_LINE + json.dumps(meta).encode() + b"\n" + raw)


FILES = st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=300).map(gzip.compress),
    st.builds(container, METAS, st.lists(RECORD, max_size=6).map(lambda rs: HEADER + b"".join(rs))),
    st.integers(0, len(REAL_BYTES) - 1).map(lambda n: REAL_BYTES[:n]),
    st.integers(0, len(REAL_RAW) - 1).map(lambda n: container(REAL_META, REAL_RAW[:n])),
    st.lists(st.integers(0, len(REAL_RAW) - 1), min_size=1, max_size=4).map(
        lambda ks: container(REAL_META, bytes(b ^ 0x41 if i in ks else b for i, b in enumerate(REAL_RAW)))),
)


@EXAMPLES
@given(data=FILES)
def test_trace_replay_of_garbage_is_one_line(palloc, tmp_path, data):
    f = tmp_path / "g.trace"
    f.write_bytes(data)
    r = palloc("trace", "replay", str(f), "--failures", str(tmp_path / "failures"), "--no-lockstep")
    assert "internal error" not in r.err and "Traceback" not in r.err, r.err
    if r.code == 2:
        assert len(r.err.strip().splitlines()) == 1, r.err
    else:
        assert r.code in (0, 1), (r.code, r.err)
