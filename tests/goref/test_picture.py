"""goref/picture.py and `palloc show`: a divergence drawn as pages, the differing ones marked.

The case is built so its divergence is known from its design: chunk 0x200c000 is full, chunk
0x200c001 has exactly three free pages [10, 13) and chunk 0x200c002 is free. searchAddr starts in
the full chunk, so alloc(3) leaves the fast path for find, where the broken model
find-off-by-one (goref/broken.py) asks for 4 pages and takes [0, 3) of 0x200c002 while the
runtime takes the exact fit [10, 13) of 0x200c001. The marked pages must be exactly those, on
both sides, and compare.py's own diff lines (an independent path) must say the same.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

from palloc.cli.main import main
from palloc.goref import ops as O
from palloc.goref import picture
from palloc.goref.broken import model_variant
from palloc.goref.compare import compare_runs
from palloc.goref.fuzz import Case, goarch_platform
from palloc.goref.model_side import ModelSide
from palloc.goref.report import model_run, write_failure

SVG = "{http://www.w3.org/2000/svg}"
C0, C1, C2 = 0x200C000, 0x200C001, 0x200C002
INIT = {"chunks": {C0: [[0, 512]], C1: [[0, 10], [13, 499]], C2: []}, "scav": {C2: [[100, 50]]}}
WANT = {C1: set(range(10, 13)), C2: set(range(0, 3))}


def _case(ops=(O.Alloc(3),)) -> Case:
    return Case("amd64", "1.27.3", INIT, list(ops), model_variant="find-off-by-one")


def _model_pair(case: Case):
    """The broken model's outcomes and the faithful model's (a real divergence, no Go needed)."""
    p = goarch_platform("amd64")
    broken = ModelSide(p, model_variant("find-off-by-one").factory()).run(case.init, case.ops)
    good = ModelSide(p).run(case.init, case.ops)
    d = compare_runs(p, [None] + case.ops, broken, good)
    d.step -= 1
    return p, broken, good, d


def _diff_lines_pages(d) -> dict[int, set[int]]:
    """The differing pages as compare.py's diff lines name them (chunk ci pages [lo, hi))."""
    out: dict[int, set[int]] = {}
    for line in d.lines:
        if line.startswith("chunk ") and " pages [" in line:
            ci = int(line.split()[1], 16)
            lo, hi = line.split("[")[1].split(")")[0].split(", ")
            out.setdefault(ci, set()).update(range(int(lo), int(hi)))
    return out


def _marked_in_text(txt: str) -> dict[tuple[int, str], set[int]]:
    """Reads the text picture back: (chunk, side) -> pages with ^ under them."""
    out: dict[tuple[int, str], set[int]] = {}
    lines = txt.splitlines()
    ci = None
    for k, line in enumerate(lines):
        if line.startswith("chunk 0x"):
            ci = int(line.split()[1], 16)
            continue
        if ci is None or not line.startswith("  0x") or k + 1 >= len(lines):
            continue
        addr = int(line.split()[0], 16)
        row = (addr - 0x3000000000 - (ci - C0) * 0x400000) // (64 * 8192)
        start = len(line) - len(line.lstrip()) + len(line.split()[0]) + 2
        nxt = lines[k + 1]
        if nxt.strip() and not nxt.lstrip().startswith("0x") and not nxt.startswith(("chunk", "summary")):
            for s, side in enumerate(("model", "runtime")):
                seg = nxt[start + s * 65:start + s * 65 + 64]
                pages = {row * 64 + i for i, ch in enumerate(seg) if ch == picture.DIFFERS}
                if pages:
                    out.setdefault((ci, side), set()).update(pages)
    return out


def test_text_marks_exactly_the_differing_pages_on_both_sides():
    case = _case()
    p, broken, good, d = _model_pair(case)
    assert _diff_lines_pages(d) == WANT  # the case does what its design says
    txt = picture.text(picture.make_picture(p, "t", case.ops, broken, good, d))
    assert _marked_in_text(txt) == {(ci, s): pages for ci, pages in WANT.items() for s in ("model", "runtime")}
    rows = {line.split()[0]: line.split()[1:3] for line in txt.splitlines() if line.startswith("  0x30004")}
    # Chunk 0x200c001's first row: ten allocated pages, the three-page hole on the model's side only.
    assert rows["0x3000400000"] == ["#" * 10 + "..." + "#" * 51, "#" * 64]
    assert "s" * 28 in txt  # chunk 0x200c002's scavenged pages [100, 150)


def test_a_picture_of_two_equal_sides_marks_nothing():
    # The other direction: both sides the same model, so a picture that marked pages regardless fails here.
    case = _case()
    p, broken, _, _ = _model_pair(case)
    pic = picture.make_picture(p, "t", case.ops, broken, broken, None)
    assert _marked_in_text(picture.text(pic)) == {}
    assert not any(picture.differing_pages(pic, ci) for ci in (C0, C1, C2))


def test_page_characters_are_the_documented_ones():
    assert [picture.page_char(a, s) for a, s in ((1, 0), (0, 0), (0, 1), (1, 1))] == ["#", ".", "s", "S"]
    assert picture.row_text((0b101, 0b110), 0)[:4] == "#sS."


def _html_marks(doc: str) -> tuple[dict[tuple[int, str], set[int]], ET.Element]:
    root = ET.fromstring(doc.split("\n", 1)[1])  # well-formed XML after the doctype
    marks: dict[tuple[int, str], set[int]] = {}
    for svg in root.iter(f"{SVG}svg"):
        ci = int(svg.get("data-chunk"), 16)
        for r in svg.iter(f"{SVG}rect"):
            if r.get("class") == "page diff":
                marks.setdefault((ci, r.get("data-side")), set()).add(int(r.get("data-page")))
    return marks, root


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_html_is_self_contained_and_marks_exactly_the_differing_pages():
    case = _case()
    p, broken, good, d = _model_pair(case)
    doc = picture.html_page(picture.make_picture(p, "t", case.ops, broken, good, d))
    marks, root = _html_marks(doc)
    assert marks == {(ci, s): pages for ci, pages in WANT.items() for s in ("model", "runtime")}
    tags = _Tags()
    tags.feed(doc)
    assert not any(t == "script" or "src" in a or str(a.get("href", "")).startswith("http") for t, a in tags.tags)
    # The operation that diverged is the highlighted one.
    assert [a["data-step"] for t, a in tags.tags if t == "li" and "diverged" in a.get("class", "")] == ["0"]
    # The summary tree: the cells marked differing are the entries compare.py names, every level.
    cells = {(int(a["data-level"]), int(a["data-index"], 16)) for t, a in tags.tags
             if t == "td" and "diff" in a.get("class", "").split()}
    named = {(int(line.split()[2]), int(line.split()[4], 16)) for line in d.lines if line.startswith("summary level")}
    assert cells and cells <= named and {lvl for lvl, _ in cells} == set(range(p.summary_levels))


@pytest.mark.go
def test_written_case_draws_the_real_runtime_beside_the_model(tmp_path, need_helper):
    r = need_helper("amd64", variant="find-off-by-one")
    case = _case()
    case.divergence = r.run_case(case)
    assert case.divergence is not None and _diff_lines_pages(case.divergence) == WANT
    paths = write_failure(case, tmp_path, runtime_outcomes=r.go_run(case.init, case.ops))
    marks, root = _html_marks(paths["html"].read_text())
    assert marks == {(ci, s): pages for ci, pages in WANT.items() for s in ("model", "runtime")}
    # searchAddr: the runtime's moved to its allocation, the model's stayed at chunk 0x200c001 page 0.
    sa = {(r.get("data-side"), r.get("data-page")) for r in root.iter(f"{SVG}rect") if r.get("class") == "search-addr"}
    assert sa == {("model", "0"), ("runtime", "10")}
    report = paths["report"].read_text()
    assert "picture:" in report
    # The report shows the rows where the pages differ, marked as in the picture, and no other row.
    assert _marked_in_text(report) == {(ci, s): pages for ci, pages in WANT.items() for s in ("model", "runtime")}
    assert len([l for l in report.splitlines() if l.startswith("  0x")]) == 2


@pytest.mark.go
def test_show_replays_a_case_draws_it_and_exits_1_where_the_sides_differ(tmp_path, capsys, need_helper):
    r = need_helper("amd64", variant="find-off-by-one")
    case = _case([O.Alloc(3), O.AllocToCache(0)])
    case.divergence = r.run_case(case)
    path = write_failure(case, tmp_path)["json"]
    out = tmp_path / "pic.html"
    assert main(["show", str(path), "--html", str(out)]) == 1
    txt = capsys.readouterr().out
    assert _marked_in_text(txt) == {(ci, s): pages for ci, pages in WANT.items() for s in ("model", "runtime")}
    assert _html_marks(out.read_text())[0] == _marked_in_text(txt)
    # After the next step each side holds a page cache: its row is named, its window framed.
    assert main(["show", str(path), "--step", "1", "--html", str(out)]) == 1
    txt = capsys.readouterr().out
    assert "cache 0 (model)" in txt and "cache 0 (runtime)" in txt
    frames = {(f.get("data-side"), f.get("data-slot")) for f in _html_marks(out.read_text())[1].iter(f"{SVG}rect")
              if f.get("class") == "cache"}
    assert frames == {("model", "0"), ("runtime", "0")}
    # Before the divergence, the initial heap: the sides agree, exit 0, nothing marked.
    assert main(["show", str(path), "--step", "-1", "--json"]) == 0
    j = json.loads(capsys.readouterr().out)
    assert j["agree"] is True and j["step"] == -1 and not any(c["differing_pages"] for c in j["chunks"])


def test_show_model_only_needs_no_go(tmp_path, capsys):
    case = _case()
    case.divergence = _model_pair(case)[3]
    path = write_failure(case, tmp_path, model_outcomes=None)["json"]
    assert main(["show", str(path), "--model-only"]) == 0
    txt = capsys.readouterr().out
    assert "0x3000400000  " + "#" * 10 + "..." in txt and "runtime" not in txt.split("legend:")[1]


@pytest.mark.parametrize("content,words", [("not json", "is not a palloc fuzz case"),
                                           (None, "cannot read")])
def test_show_on_a_bad_file_is_one_line_and_exit_2(tmp_path, capsys, content, words):
    f = tmp_path / "bad.json"
    if content is not None:
        f.write_text(content)
    assert main(["show", str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err


def test_show_with_a_step_outside_the_case_is_one_line_and_exit_2(tmp_path, capsys):
    path = write_failure(_case(), tmp_path)["json"]
    capsys.readouterr()
    assert main(["show", str(path), "--step", "7", "--model-only"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--step 7 is not in" in err


# --- the picture in a real browser ------------------------------------------------------------


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("no Chromium here: `apt-get install chromium` (Debian) to run the browser test")


@pytest.mark.slow
@pytest.mark.go
def test_chromium_draws_the_marked_pages_where_the_case_says(tmp_path, need_helper):
    browser = _chromium()
    Image = pytest.importorskip("PIL.Image", reason="the screenshot is read with Pillow: pip install pillow")
    r = need_helper("amd64", variant="find-off-by-one")
    case = _case()
    case.divergence = r.run_case(case)
    page = write_failure(case, tmp_path, runtime_outcomes=r.go_run(case.init, case.ops))["html"]
    p = r.p
    pic = picture.case_picture(case, model_run(case), r.go_run(case.init, case.ops))
    shot = tmp_path / "shot.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--force-device-scale-factor=1", "--window-size=1500,700", f"--screenshot={shot}",
                    page.as_uri()], capture_output=True, timeout=120, check=False)
    img = Image.open(shot).convert("RGB")
    assert len(img.getcolors(1 << 20)) > 4, "the screenshot is blank"
    red = tuple(int(picture.COLOURS["differs"][i:i + 2], 16) for i in (1, 3, 5))
    chunks, _ = picture.chunks_to_draw(pic)
    for pos, ci in enumerate(chunks):
        for side in (0, 1):
            for pg in range(p.palloc_chunk_pages):
                x, y = picture.page_xy(pic, pos, side, pg)
                got = img.getpixel((x + 1, y + 1))  # the square's rim: red only where marked
                assert (got == red) == (pg in WANT.get(ci, ())), (hex(ci), side, pg, got)
