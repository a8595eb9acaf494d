"""The -toolexec shim of coverage builds (goref/cover_toolexec.py): the cover tool gets the overlay's
replacement of a patched runtime file, not the GOROOT original (golang/go#73802), and its tool ID is
marked so that no GOCACHE entry of an unshimmed build is reused. That the built helper then runs the
patched code is tested end to end by tests/goref/test_conformance.py's policy patch."""

from __future__ import annotations

import json
import subprocess
import sys

from palloc.goref.cover_toolexec import swapped

OVERLAY = {"Replace": {"/go/src/runtime/mpagealloc.go": "/tmp/p/mpagealloc.go", "/go/src/runtime/gone.go": ""}}


def test_only_the_cover_tools_replaced_inputs_are_swapped():
    args = ["-mode", "count", "/go/src/runtime/mpagealloc.go", "/go/src/runtime/mheap.go", "/go/src/runtime/gone.go"]
    assert swapped(OVERLAY, "/go/pkg/tool/linux_amd64/cover", args) == [
        "-mode", "count", "/tmp/p/mpagealloc.go", "/go/src/runtime/mheap.go", "/go/src/runtime/gone.go"]
    assert swapped(OVERLAY, "/go/pkg/tool/linux_amd64/compile", args) == args


def test_the_cover_tool_id_is_marked(tmp_path):
    tool = tmp_path / "cover"
    tool.write_text("#!/bin/sh\necho 'cover version go1.27.3'\n")
    tool.chmod(0o755)
    ov = tmp_path / "overlay.json"
    ov.write_text(json.dumps(OVERLAY))
    r = subprocess.run([sys.executable, "-m", "palloc.goref.cover_toolexec", str(ov), str(tool), "-V=full"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout == "cover version go1.27.3 palloc-cover-overlay-shim\n", r
