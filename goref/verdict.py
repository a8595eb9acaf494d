"""The checks of a runtime patch and the verdict they give (`palloc verify-change`, cli/verify_change.py).

Given the patch as an Overlay (goref/patch.py; verify_cell applies a patch's text on a Dask worker),
builds the Go helper on the patched runtime (goref/build.py, extra_overlay), and runs, per GOARCH:

0. translation: translation validation (proofs/tv.py, first: it takes seconds): every translated
   runtime function the patch changes is proved equal to the original, or refuted with an input
   the patched runtime confirms (`breaks`); unknown, unsupported or not translated leaves the
   verdict to the checks below. prove_only (`--prove-only`) runs this alone (exit 0 all proved, 1 refuted, 2
   anything undecided);
1. start-up: the patched runtime must start and report its constants (a crash here is `breaks`);
2. constants: compared with palloc's table for the platform; when the patch changes them the
   proofs are run for the patched constants (when palloc.proofs offers a runner);
3. differential: a fuzz campaign of the model against the patched runtime (goref/fuzz.py), run
   first so its time to detection after the build is its own;
4. baseline: the runtime's own page-allocator tests on the patched binary (goref/baseline.py).

Verdict `breaks` (exit 1) names the check, the counterexample, the replay file and the differing
state; a runtime that throws, faults or hangs on an input the model defines breaks, and a
divergence any worker finds wins over another worker's fault. A divergence from the model is then
judged against the allocator's contract (goref/conformance.py, spec/obligations.py): `breaks`
names the obligation the patched runtime broke, on its own state, with the case shrunk to it;
when every obligation holds the verdict is `changes behaviour` (exit 3), with what differs, after
a campaign that judges the runtime against the contract alone; strict: any divergence breaks.
`no divergence found` (exit 0) says what was covered, and which checks could not run; it needs a
check that held. A check that ran without reaching a verdict (a harness fault) makes it
`inconclusive`, and no check at all `nothing checked` (both exit 2). A patched runtime that does
not compile raises PallocError. The exit codes are the command's (cli/verify_change.py).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any, Callable

from palloc.goref import coverage as cov
from palloc.goref import procs
from palloc.spec.errors import PallocError

# The runtime's page-allocator tests take about 3 s natively; past this they count as hung.
BASELINE_SECONDS = 120
BASELINE_HUNG_SECONDS = 20
# Within --total-seconds: what a campaign leaves for the heap in flight and writing its case, and
# what a divergence's Go test (built and run on the patched and unpatched runtimes) needs.
RESERVE_SECONDS = 3.0
GO_TEST_SECONDS = 60.0
NOT_REACHED = "not reached: the --total-seconds budget ran out"


def _time_left(need: float) -> bool:
    """Reports whether the run's --total-seconds leaves more than `need` seconds (always, unbounded)."""
    from palloc.goref import progress as budget

    left = budget.left()
    return left is None or left > need


def _within(seconds: float, reserve: float = RESERVE_SECONDS) -> float:
    """Returns seconds, or what is left of --total-seconds (less reserve) if that is less."""
    from palloc.goref import progress as budget

    left = budget.left()
    return seconds if left is None else max(1.0, min(seconds, left - reserve))


@dataclasses.dataclass
class Check:
    """One check on one GOARCH: status ran|skipped|unavailable, verdict breaks|holds|changes|pins policy|None."""

    name: str
    goarch: str
    status: str
    verdict: str | None = None
    seconds: float = 0.0
    after_build_seconds: float | None = None  # from the end of the build to the end of this check
    detail: str = ""
    evidence: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Check":
        """A check from a stored report's dict (its other keys, if any, are not a check's)."""
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})




def patch_record(overlay, base_goroot: Path, path: str | None = None, text: str | None = None) -> dict:
    """Returns the record of the change a case is found on (Case.patch): the diff's text (for a
    --goroot tree, a diff made here of its differing runtime files), its SHA-256 and path, so
    that `palloc replay CASE` rebuilds the patched runtime from the case alone."""
    import difflib
    import hashlib

    if text is None:
        parts = []
        for rel, new in sorted(overlay.files.items()):
            old_file = Path(base_goroot) / rel
            a = old_file.read_text().splitlines(keepends=True) if old_file.is_file() else []
            b = Path(new).read_text().splitlines(keepends=True) if new else []
            parts.append(f"diff --git a/{rel} b/{rel}\n")
            parts += difflib.unified_diff(a, b, f"a/{rel}" if a else "/dev/null", f"b/{rel}" if b else "/dev/null")
        text = "".join(parts)
    return {"path": path, "sha256": hashlib.sha256(text.encode()).hexdigest(), "text": text}


def _go_version(version: str) -> str:
    """Returns palloc's version key ("1.27") for a toolchain version ("go1.27.3")."""
    v = version.removeprefix("go")
    return ".".join(v.split(".")[:2])


def _platform_for(goarch: str, version: str, goos: str = "linux", changes: dict | None = None):
    """Returns palloc's platform for a --goarch (goref/targets.py: wasm is js/wasm, linux/ppc64 the
    other-endian stand-in of ppc64le), with the patch's changed constant inputs if any. goos: unused (the target
    names its own)."""
    from palloc.goref.fuzz import goarch_platform

    p = goarch_platform(goarch, _go_version(version))
    if changes:
        return p.replace(name=p.name + "+hypothetical", **changes)
    return p


def _plat_name(goarch: str) -> str:
    from palloc.goref.fuzz import GOARCH_PLATFORM

    return GOARCH_PLATFORM.get(goarch, f"linux/{goarch}")


def _constants_check(h, goarch: str, tc, t_built: float) -> tuple[Check, Check | None, dict | None]:
    """Returns the start-up check, the constants check, and the helper's constants (None on a crash)."""
    t0 = time.monotonic()
    r = h.call1({"op": "constants"})
    secs = time.monotonic() - t0
    if r.get("kind") != "ok":
        c = Check("start-up", goarch, "ran", "breaks", secs, time.monotonic() - t_built,
                  f"the patched runtime does not start: {r.get('kind')}: {r.get('msg', '')}".strip(), {"crash": r})
        return c, None, None
    up = Check("start-up", goarch, "ran", "holds", secs, time.monotonic() - t_built, "the patched runtime starts")
    try:
        from palloc.goref.targets import compare_constants

        p = _platform_for(goarch, tc.version, tc.goos)
        mismatches, _ = compare_constants(r, p)
    except Exception as e:  # noqa: BLE001 - an unknown platform/version must not hide the other checks
        return up, Check("constants", goarch, "unavailable", None, 0.0, None, f"cannot compare constants: {e}"), r
    if not mismatches:
        return up, Check("constants", goarch, "ran", "holds", 0.0, None,
                         f"the patch leaves the page allocator's constants as palloc's {p.name} table has them"), r
    names = ", ".join(f"{m['name']} {m['palloc']} -> {m['helper']}" for m in mismatches[:6])
    return up, Check("constants", goarch, "ran", None, 0.0, None, f"the patch changes constants: {names}",
                     {"mismatches": mismatches}), r


# The runtime constants that are inputs of palloc's Platform (the rest are derived from them).
INPUT_CONSTANTS = {
    "heapAddrBits": "heap_addr_bits",
    "arenaBaseOffset": "arena_base_offset",
    "summaryLevelBits": "summary_level_bits",
    "logPallocChunkPages": "log_palloc_chunk_pages",
    "summaryLevels": "summary_levels",
    "pallocChunksL1Bits": "palloc_chunks_l1_bits",
}


def _proofs_check(goarch: str, mismatches: list[dict] | None, version: str) -> Check:
    """Runs the proof suite for the patched constants when the patch changed them.

    The patched constants become a hypothetical platform (spec.constants.hypothetical) with the
    changed inputs; each theorem's obligations are then solved for it (proofs/runner.py).
    """
    if not mismatches:
        return Check("proofs", goarch, "skipped", None, detail="constants unchanged: the proof suite's verdicts "
                     f"for {_plat_name(goarch)} (palloc prove) apply to the patched runtime as they do to the base")
    changes = {INPUT_CONSTANTS[m["name"]]: m["helper"] for m in mismatches if m["name"] in INPUT_CONSTANTS}
    if not changes:
        names = ", ".join(m["name"] for m in mismatches)
        return Check("proofs", goarch, "unavailable", None,
                     detail=f"the patch changes derived constants ({names}) without changing an input; "
                     "palloc's platforms cannot express that, so no proof was run")
    try:
        from palloc.proofs import runner
    except ImportError as e:
        return Check("proofs", goarch, "unavailable", None, detail=f"the proof suite is not available ({e})")
    from palloc.spec.errors import PallocError as _PE

    spec = runner.PlatformSpec(_plat_name(goarch), tuple(sorted(changes.items())))
    t0 = time.monotonic()
    try:
        spec.resolve()
    except (_PE, ValueError) as e:
        return Check("proofs", goarch, "ran", "breaks", time.monotonic() - t0, None,
                     f"the patched constants fail the runtime's own consistency conditions: {e}", {"changes": changes})
    results = runner.run(runner.plan([spec], broken=False), jobs=1)
    bad = [r for r in results if r.get("verdict") != "proved"]
    detail = f"{len(results) - len(bad)}/{len(results)} obligations proved for {spec.label}"
    if bad:
        detail += ": not proved: " + ", ".join(f"{r.get('obligation')} ({r.get('verdict')})" for r in bad[:5])
    return Check("proofs", goarch, "ran", "breaks" if bad else "holds", time.monotonic() - t0, None, detail,
                 {"changes": changes, "not_proved": bad})


def _baseline_check(binary: Path, goarch: str, t_built: float, timeout: float = 0) -> Check:
    from palloc.goref.baseline import PAGE_ALLOC_TESTS, run_test_binary

    t0 = time.monotonic()
    from palloc.goref.targets import START_ALLOWANCE, target

    # Under an emulator the runtime's tests run several times slower: the same allowance as a start.
    slow = START_ALLOWANCE.get(target(goarch).runner, 1.0)
    tests, code, secs, crash = run_test_binary(binary, PAGE_ALLOC_TESTS, timeout=(timeout or BASELINE_SECONDS) * slow,
                                               goarch=goarch)
    failed = sorted(t for t, v in tests.items() if v in ("fail", "crashed"))
    if not tests and code == 0:
        return Check("runtime-tests", goarch, "unavailable", None, secs, None, "the runtime's tests matched nothing")
    if not tests and not crash and code not in (None, 0):
        # Nothing ran and the runtime said nothing: the test runner did not start, not the patch.
        return Check("runtime-tests", goarch, "unavailable", None, secs, None,
                     f"the runtime's tests did not start (exit {code}, no test ran, no crash)")
    broke = bool(failed) or code != 0
    detail = (f"the runtime's own tests fail: {', '.join(failed) or f'exit {code}'}" + (f" ({crash})" if crash else "")
              if broke else f"the runtime's own {len(tests)} page-allocator tests pass")
    return Check("runtime-tests", goarch, "ran", "breaks" if broke else "holds", time.monotonic() - t0,
                 time.monotonic() - t_built, detail, {"failed": failed, "exit_code": code, "tests": len(tests),
                                                      "crash": crash or None})


def _go_test_check(go_file: Path, goarch: str, tc, files: dict[str, str]) -> dict[str, Any]:
    """Runs the case's Go test on the patched runtime and on the unpatched one: a counterexample
    to paste into the runtime's tests fails on the first and passes on the second."""
    from palloc.goref.gotest import run_go_test

    out: dict[str, Any] = {}
    for side, overlay in (("patched", files), ("unpatched", {})):
        try:
            r = run_go_test(go_file, goarch, str(tc.goroot), overlay)
            out[side] = {"passed": r.passed, "outcome": r.outcome, "said": r.said(), "errors": r.errors[:5]}
        except PallocError as e:
            out[side] = {"error": str(e)}
    p, u = out["patched"], out["unpatched"]
    out["reproduces"] = p.get("passed") is False and u.get("passed") is True
    return out


def _fuzz_check(h, goarch: str, tc, helper_constants: dict, seconds: float, seed: int, replay: Path,
                t_built: float, mismatches: list[dict] | None = None, files: dict[str, str] | None = None,
                binary: Path | None = None, jobs: int = 1, patch: dict | None = None, strict: bool = False,
                coverdir: str | None = None, verbs: list | None = None, corpus: str | None = None,
                corpus_replay: bool = True) -> Check:
    """Runs a differential campaign against the helper (on `jobs` workers, each starting its own
    from `binary`); the model uses the patched constants. A divergence is then judged against the
    spec (goref/conformance.py), unless strict: `breaks` names the obligation that failed,
    `changes` (verdict "changes behaviour") says what differs when every obligation held."""
    try:
        from palloc.goref import campaign, fuzz
        from palloc.goref.go_side import GoSide
    except ImportError as e:
        return Check("differential", goarch, "unavailable", None, detail=f"the differential fuzzer is not available ({e})")
    changes = {INPUT_CONSTANTS[m["name"]]: m["helper"] for m in (mismatches or []) if m["name"] in INPUT_CONSTANTS}
    try:
        p = _platform_for(goarch, tc.version, tc.goos, changes)
    except PallocError as e:
        return Check("differential", goarch, "unavailable", None, detail=f"the patched constants are not a platform palloc can model: {e}")
    host = {"phys_page_size": helper_constants.get("physPageSize"), "phys_huge_page_size": helper_constants.get("physHugePageSize")}
    host = {k: v for k, v in host.items() if v is not None}
    conf = campaign.Config(goarch=goarch, seconds=seconds, seed=seed, steps=fuzz.DEFAULT_STEPS["lockstep"],
                           failures=str(replay), binary=str(binary) if binary else None, platform=p, host=host,
                           go_version=tc.version, patch=patch, coverdir=coverdir, verbs=verbs, corpus=corpus,
                           corpus_replay=corpus_replay)
    t0 = time.monotonic()
    if jobs > 1 and binary is not None:
        out = campaign.run_pool(conf, jobs)
    else:
        runner = fuzz.Lockstep(p, GoSide(p, h), host=host, goarch=goarch, go_version=tc.version)
        runner.verbs = verbs
        out = campaign.run_here(conf, runner)
    secs = time.monotonic() - t0
    if out.stopped == "interrupted" and out.verdict != "divergence":
        raise KeyboardInterrupt
    cover = out.stats.to_json()
    deaths = cover.get("helper_deaths") or []
    verdict = out.verdict  # a confirmed divergence of any worker wins over every fault and error
    if verdict != "divergence" and out.start_death is not None:
        # It started once (the start-up check passed), so a later start that dies is the patch too.
        msg = (out.error or "").split("; rebuild", 1)[0]
        return Check("start-up", goarch, "ran", "breaks", secs, time.monotonic() - t_built,
                     f"the patched runtime does not start again after a restart: {msg}", {"crash": out.start_death})
    if verdict == "fault":
        return Check("differential", goarch, "ran", None, secs, None,
                     f"harness fault (a side disagrees with itself): {out.fault}",
                     {"coverage": cover, "cases": [_case_entry(f) for f in out.failures]})
    if verdict == "error":
        raise PallocError(out.error)
    if verdict == "holds":
        if not cover["checked_ops"]:
            return Check("differential", goarch, "ran", None, secs, None, "checked nothing (no operation was "
                         "compared within the budget); give more --seconds", {"coverage": cover})
        return Check("differential", goarch, "ran", "holds", secs, None,
                     f"no divergence in {cover['checked_ops']} operations ({cover['examples']} cases, {secs:.0f} s)"
                     + (f"; helper deaths not caused by the runtime: {'; '.join(deaths)}" if deaths else ""),
                     {"coverage": cover})
    f = out.failure
    judged = None if strict else _judge(conf, f, seconds, seed)
    if judged is not None and judged.verdict == "changes behaviour":
        b = judged.behaviour or {}
        ev = {"coverage": cover, "first_difference": f["divergence"], "model_case": f["files"], "behaviour": b,
              "spec_campaign": judged.stats, "cases": [_case_entry(x) for x in out.failures]}
        return Check("differential", goarch, "ran", "changes", secs + judged.seconds, None,
                     f"changes behaviour: differs from the model ({f['headline']}), every obligation of the spec "
                     f"holds on the case and through {((judged.stats or {}).get('checked_ops') or 0):,} more operations judged "
                     f"against the spec alone ({judged.seconds:.0f} s)", ev)
    model_divergence = f["divergence"]
    if judged is not None:  # breaks: an obligation failed; the case shrunk to it replaces the model's
        g = judged.failure or f
        g = dict(g, model_case=f.get("files"), obligation=judged.obligation)
        out.failures.append(g)
        f = g
    ev: dict[str, Any] = {"coverage": cover, "divergence": f["divergence"], "ops": f["ops"],
                          "replay": f["files"].get("json"), "files": f["files"],
                          "cases": [_case_entry(x) for x in out.failures]}
    if f.get("note"):
        ev["note"] = f["note"]
    if f.get("obligation"):
        ev["obligation"] = f["obligation"]
    if f.get("model_case"):  # judged: the divergence from the model that started it, and its case
        ev["model_case"] = f["model_case"]
        ev["model_divergence"] = model_divergence
    if out.fault:
        ev["other_faults"] = out.fault
    if f.get("printer_error"):
        ev["printer_error"] = f["printer_error"]
    elif "go" in f["files"]:
        ev["go_test"] = Path(f["files"]["go"]).read_text()
        if files is not None and not _time_left(GO_TEST_SECONDS):
            ev["go_test_runs_skipped"] = NOT_REACHED
        elif files is not None:
            ev["go_test_runs"] = _go_test_check(Path(f["files"]["go"]), goarch, tc, files)
    where = f"replay: {f['files']['json']}" if (f.get("files") or {}).get("json") else "the case was printed on stderr"
    ob = f" (spec obligation {f['obligation']})" if f.get("obligation") else ""
    return Check("differential", goarch, "ran", "breaks", secs, time.monotonic() - t_built,
                 f"{f['headline'] or 'divergence'}{ob} ({where})", ev)


def _judge(conf, f: dict, seconds: float, seed: int):
    """Judges a confirmed divergence from the model against the spec (goref/conformance.py);
    None when it cannot be (the case was not written) or needs no re-run: a runtime that died on
    an input the model defines breaks defined_ops_return as it stands."""
    from palloc.goref import campaign, conformance
    from palloc.goref.compare import Divergence
    from palloc.goref.fuzz import Case

    if not f.get("confirmed", True) or not (f.get("files") or {}).get("json"):
        return None
    d = f.get("divergence") or {}
    if conformance.obligation_of(Divergence(0, None, d.get("kind", ""), d.get("lines") or [])) == "defined_ops_return":
        return conformance.Judgement("breaks", "defined_ops_return", dict(f))
    try:
        case = Case.from_json(json.loads(Path(f["files"]["json"]).read_text()))
    except (OSError, ValueError, KeyError) as e:
        return conformance.Judgement("breaks", None, dict(f, note=f"not judged against the spec ({e})"))
    go_factory = (lambda: campaign._given_helper(conf)) if conf.binary else campaign.fresh_session(conf)
    return conformance.judge(conf, case, go_factory, seconds, seed)


def _case_entry(f: dict) -> dict:
    """One case a worker found, for the report: headline, size, files, confirmation."""
    return {k: f[k] for k in ("headline", "ops", "files", "confirmed", "note") if k in f}


def _translation_check(overlay, tc, goarch: str, strict: bool = False) -> Check:
    """Runs translation validation (proofs/tv.py) on the functions the patch changes: proved
    equivalent holds; a counterexample the patched runtime confirms breaks; anything else
    (unknown, unsupported, not in scope) has no verdict and leaves it to the other checks."""
    from palloc.goref.targets import target
    from palloc.proofs.tv import check_patch

    t0 = time.monotonic()
    t = target(goarch)  # "wasm" is js/wasm: translate for the runtime the helper runs
    rep = check_patch(tc, dict(overlay.files), t.goarch, goos=t.goos, target=goarch)
    code = rep.exit_code()
    fs = rep.functions
    counts = ", ".join(f"{sum(f.verdict == v for f in fs)} {v}" for v in dict.fromkeys(f.verdict for f in fs))
    detail = f"{rep.verdict}" + (f" ({counts})" if counts else f": {rep.note}")
    verdict = {0: "holds", 1: "breaks"}.get(code)
    if verdict == "breaks" and not strict:
        # A refuted function whose choices the contract leaves free (proofs/tv_functions.toml
        # `policy`) changes behaviour; the differential judges the runtime against the spec.
        from palloc.proofs.tv import COUNTEREXAMPLE, function_table

        refuted = [f.name for f in fs if f.verdict == COUNTEREXAMPLE and f.confirmed]
        policy = {n: function_table()["func"].get(n, {}).get("policy") for n in refuted}
        if refuted and all(policy.values()):
            verdict = "changes"
            detail += "; " + "; ".join(f"{n} decides policy ({policy[n]})" for n in refuted)
    return Check("translation", goarch, "ran", verdict, time.monotonic() - t0,
                 time.monotonic() - t0 if verdict == "breaks" else None, detail,
                 {"tv": rep.to_json(), "text": rep.format()})


def verify(overlay, tc, goarches: list[str], seconds: float, seed: int = 0, replay_dir: Path = Path("palloc-failures"),
           baseline: bool = True, fuzz: bool = True, name: str = "patch",
           progress: Callable[[str], None] | None = None, go_test: bool = True,
           jobs: int | None = None, patch_path: str | None = None, patch_text: str | None = None,
           prove: bool = True, prove_only: bool = False, strict: bool = False, coverage: bool = True,
           corpus: str | None = None, corpus_replay: bool = True) -> dict[str, Any]:
    """Returns the report of every check of the overlay on every GOARCH (see the module docstring).

    prove: run translation validation first (it takes seconds); prove_only: nothing else.
    coverage: the patched helper counts the runtime lines palloc's operations run
    (goref/coverage.py); the differential says how often the changed lines ran, steers the
    generator toward them, and a campaign without divergence that never ran them is inconclusive.
    corpus: the failure corpus (goref/corpus.py) a divergence is kept in and, with corpus_replay,
    whose cases are replayed on the patched runtime before the campaign generates anything.
    Raises PallocError if the patched runtime does not compile.
    """
    from palloc.goref import progress as budget
    from palloc.goref.build import build_helper
    from palloc.goref.campaign import default_jobs
    from palloc.goref.driver import GoHelper, HelperStartError

    say = progress or (lambda s: None)
    checks: list[Check] = []
    builds: dict[str, float] = {}
    t_all = time.monotonic()
    for goarch in goarches:
        if not _time_left(0.0):
            checks.append(Check("checks", goarch, "skipped", None, detail=NOT_REACHED))
            continue
        if prove or prove_only:
            say(f"{goarch}: translation validation of the changed runtime functions")
            c = _translation_check(overlay, tc, goarch, strict)
            checks.append(c)
            say(f"{goarch}: translation: {c.detail}")
            if prove_only:
                continue
        say(f"{goarch}: building the helper on the patched runtime ({overlay.describe()})")
        t0 = time.monotonic()
        try:
            binary = build_helper(tc, goarch, dict(overlay.files), coverage=coverage and fuzz)
        except budget.BudgetSpent as e:
            checks.append(Check("build", goarch, "skipped", None, detail=f"not reached: {e}"))
            continue
        except PallocError as e:
            if "goref/overlay/" in str(e):  # palloc's own test-only files failed, not the patched runtime
                raise PallocError(f"palloc's Go helper overlay does not build for {goarch} (not caused by {name}): {e}") from None
            raise PallocError(f"{name}: the patched runtime does not build for {goarch}: {e}") from None
        builds[goarch] = round(time.monotonic() - t0, 2)
        t_built = time.monotonic()
        coverdir = procs.tempdir("cover") if coverage and fuzz else None
        changed = cov.changed_lines(tc.runtime_dir, dict(overlay.files)) if coverdir else {}
        h = GoHelper(binary, goarch=goarch, **(cov.helper_options(coverdir) if coverdir else {}))
        try:
            try:
                h.start()  # pings the helper: the patched runtime must start
            except HelperStartError as e:
                # The unpatched helper starts (the build and protocol are the same), so this is the patch.
                msg = str(e).split("; rebuild", 1)[0]
                checks.append(Check("start-up", goarch, "ran", "breaks", 0.0, time.monotonic() - t_built,
                                    f"the patched runtime does not start: {msg}", {"error": str(e)}))
                up, const, hc = None, None, None
            else:
                up, const, hc = _constants_check(h, goarch, tc, t_built)
                checks.append(up)
            if up is not None:
                say(f"{goarch}: start-up: {up.detail}")
            if const is not None:
                checks.append(const)
                checks.append(_proofs_check(goarch, const.evidence.get("mismatches"), tc.version))
            if fuzz and hc is not None and not _time_left(RESERVE_SECONDS + 1):
                checks.append(Check("differential", goarch, "skipped", None, detail=NOT_REACHED))
            elif fuzz and hc is not None:
                c = _fuzz_check(h, goarch, tc, hc, _within(seconds), seed, replay_dir / f"{name}-{goarch}", t_built,
                                const.evidence.get("mismatches") if const is not None else None,
                                dict(overlay.files) if go_test else None, binary,
                                jobs if jobs is not None else default_jobs("lockstep"),
                                patch_record(overlay, tc.goroot, patch_path, patch_text), strict, coverdir,
                                cov.steer_verbs(changed, tc, dict(overlay.files)) if coverdir else None,
                                corpus, corpus_replay)
                if coverdir and c.verdict == "holds" and _time_left(RESERVE_SECONDS + 5):
                    c = _until_covered(c, h, goarch, tc, hc, _within(min(seconds, TARGETED_SECONDS)), seed, replay_dir / f"{name}-{goarch}", t_built,
                                       const, overlay, go_test, binary,
                                       patch_record(overlay, tc.goroot, patch_path, patch_text), strict, coverdir,
                                       changed)
                checks.append(c)
                say(f"{goarch}: differential: {c.detail}")
            elif fuzz:
                checks.append(Check("differential", goarch, "skipped", None, detail="the patched runtime does not start"))
            if baseline and not _time_left(BASELINE_HUNG_SECONDS):
                checks.append(Check("runtime-tests", goarch, "skipped", None, detail=NOT_REACHED))
            elif baseline:
                # A runtime that hung before answering its first ping hangs its tests too: they
                # are still run (the baseline's column), but not waited for as long.
                hung = any(c.name == "start-up" and c.verdict == "breaks" and "go-hang" in c.detail for c in checks)
                c = _baseline_check(binary, goarch, t_built, timeout=BASELINE_HUNG_SECONDS if hung else _within(BASELINE_SECONDS, 0.0))
                checks.append(c)
                say(f"{goarch}: {c.detail}")
        finally:
            h.close()
            if coverdir:  # every helper has exited and written its counts
                _coverage_of(checks, goarch, coverdir, tc, overlay, changed, replay_dir / f"{name}-{goarch}")
    return conclude([dataclasses.asdict(c) for c in checks], overlay.files, goarches, tc, builds, name,
                    time.monotonic() - t_all, strict)


# A campaign without divergence whose changed lines never ran gets at most this long again,
# drawing almost only the verbs that reach the changed functions (goref/coverage.py target_verbs).
TARGETED_SECONDS = 30.0


def _until_covered(c: Check, h, goarch: str, tc, hc: dict, seconds: float, seed: int, replay: Path, t_built: float,
                   const, overlay, go_test: bool, binary: Path, patch: dict, strict: bool, coverdir: str,
                   changed: dict) -> Check:
    """Returns the differential check c, or, when its campaign never ran a changed line, that of
    a targeted campaign run after it (a divergence it finds decides; without one, c says what it
    tried). The helpers' counts so far are read first: h exits to write its own."""
    h.close()
    try:
        status = cov.report(cov.read_profile(coverdir, tc), tc, dict(overlay.files), changed).changed_status
    except PallocError:
        return c
    verbs = cov.target_verbs(changed, tc, dict(overlay.files))
    if status != "never ran" or not verbs:
        return c
    t = _fuzz_check(h, goarch, tc, hc, seconds, seed + 1, replay, t_built,
                    const.evidence.get("mismatches") if const is not None else None,
                    dict(overlay.files) if go_test else None, binary, 1, patch, strict, coverdir, verbs, None, False)
    if t.verdict != "holds":
        return t
    c.detail += f"; then {t.seconds:.0f} s drawing mostly {', '.join(dict.fromkeys(verbs[2:]))}: {t.detail}"
    c.evidence["targeted"] = t.evidence.get("coverage")
    return c


def _coverage_of(checks: list[Check], goarch: str, coverdir: str, tc, overlay, changed: dict, out_dir: Path) -> None:
    """Adds to goarch's differential check how often the changed lines ran (goref/coverage.py),
    and the coverage view to out_dir; a campaign without divergence that never ran a changed
    line has no verdict: no divergence means nothing there."""
    import shutil

    try:
        diff = next((c for c in checks if c.name == "differential" and c.goarch == goarch and c.status == "ran"), None)
        if diff is None:
            return
        try:
            rep = cov.finish(coverdir, tc, out_dir, "coverage", dict(overlay.files), changed)
        except PallocError as e:
            diff.evidence["runtime_coverage"] = {"error": str(e)}
            return
        diff.evidence["runtime_coverage"] = rep.to_json()
        said = "; ".join(rep.changed_sentences())
        if said:
            diff.detail += f"; {said}"
        if diff.verdict == "holds" and rep.changed_status == "never ran":
            diff.verdict = None
    finally:
        shutil.rmtree(coverdir, ignore_errors=True)


def pin_policy(checks: list[Check], strict: bool = False) -> list[str]:
    """When the spec accepts the patch (a check says `changes` and no check but the runtime's own
    tests breaks), marks those tests failing without a crash `pins policy` rather than `breaks`;
    returns a line per GOARCH saying so. strict: nothing is accepted, nothing pinned."""
    pinned: list[str] = []
    if strict or not any(c.verdict == "changes" for c in checks):
        return pinned
    if any(c.verdict == "breaks" and c.name != "runtime-tests" for c in checks):
        return pinned
    for c in checks:
        if c.name == "runtime-tests" and c.verdict == "breaks" and not c.evidence.get("crash"):
            c.verdict = "pins policy"
            failed = c.evidence.get("failed") or []
            pinned.append(f"the runtime's tests pin the old policy ({c.goarch}): {', '.join(failed) or 'they fail'}")
    return pinned


# verdict_of's verdicts, strongest first (--prove-only's beside their like).
VERDICTS = ("breaks", "inconclusive", "undecided", "changes behaviour", "no divergence found", "proved equivalent",
            "nothing checked")


def strongest(verdicts) -> str:
    """Returns the strongest of several runs' verdicts (GOARCHes, seeds), as verdict_of over all
    their checks would give; `nothing checked` for none. A verdict not of VERDICTS counts as
    inconclusive."""
    rank = {v: i for i, v in enumerate(VERDICTS)}
    return min(verdicts, key=lambda v: rank.get(v, rank["inconclusive"]), default="nothing checked")


def verdict_of(checks: list[Check]) -> str:
    """Returns the verdict of checks (of one GOARCH or several), strongest first: breaks >
    inconclusive > changes behaviour > no divergence found > nothing checked; translation
    validation alone (--prove-only): proved equivalent, or undecided."""
    breaking = [c for c in checks if c.verdict == "breaks"]
    # A check that ran and reached no verdict (a harness fault, nothing compared) leaves the
    # answer open unless another check breaks; "no divergence found" needs a check that held.
    # Translation validation without a verdict (unknown, unsupported, not in scope) leaves the
    # answer to the differential, unless it ran alone (--prove-only).
    only_tv = all(c.name == "translation" for c in checks)
    open_ = [c for c in checks if c.status == "ran" and c.verdict is None and c.name != "constants"
             and (c.name != "translation" or only_tv)]
    held = [c for c in checks if c.verdict == "holds" and c.name not in ("start-up", "constants")]
    if only_tv and checks and not breaking:
        # --prove-only: every GOARCH's every changed function proved, or the reason it was not.
        return "proved equivalent" if not open_ else "undecided"
    return ("breaks" if breaking else "inconclusive" if open_ else
            "changes behaviour" if any(c.verdict == "changes" for c in checks)
            else "no divergence found" if held else "nothing checked")


def conclude(checks: list[dict], files: dict, goarches: list[str], tc, builds: dict, name: str,
             seconds: float, strict: bool = False) -> dict[str, Any]:
    """Returns the report of the checks (as dicts) of every GOARCH: the verdict and what decided it
    (one GOARCH's run, or several merged, as a Dask run of one task per GOARCH is).

    The verdict is verdict_of's (breaks, exit 1 > inconclusive, 2 > changes behaviour, 3 > no
    divergence found, 0 > nothing checked, 2) after pin_policy: the runtime's own tests failing
    on a patch the spec accepts pin the old policy, said on their own line, not a second `breaks`."""
    checks = [Check(**c) for c in checks]
    pinned = pin_policy(checks, strict)
    verdict = verdict_of(checks)
    changed = [c for c in checks if c.verdict == "changes"]
    breaking = [c for c in checks if c.verdict == "breaks"]
    first = min(breaking, key=lambda c: c.after_build_seconds or 0.0) if breaking else None
    not_run = [f"{c.name} ({c.goarch}): {c.detail}" for c in checks if c.status in ("unavailable",)]
    return {
        "patch": name,
        "files": files,
        "goarches": list(goarches),
        "toolchain": {"version": tc.version, "goroot": str(tc.goroot)},
        "verdict": verdict,
        "caught_by": sorted({c.name for c in breaking}),
        "strict": strict,
        "policy_pinned_by_tests": pinned,
        "behaviour": [dict(c.evidence.get("behaviour") or {}, goarch=c.goarch) for c in changed if c.evidence.get("behaviour")],
        "first_detection": dataclasses.asdict(first) if first else None,
        "build_seconds": builds,
        "total_seconds": round(seconds, 2),
        "not_run": not_run,
        "checks": [dataclasses.asdict(c) for c in checks],
    }


def verify_cell(a: dict) -> dict:
    """One GOARCH of `palloc verify-change PATCH`: the patch (its text) applied on the worker to
    its own toolchain, then verify() on that GOARCH; returns verify()'s report."""
    import tempfile

    from palloc.goref import matrix
    from palloc.goref.build import cache_dir
    from palloc.goref.patch import apply_patch
    from palloc.goref.toolchain import find_toolchain

    tc = find_toolchain(a.get("goroot"))
    with tempfile.TemporaryDirectory(prefix="palloc-verify-") as d:
        patch = Path(d) / f"{a['name']}.patch"
        patch.write_text(a["patch_text"])
        ov = apply_patch(patch, tc.goroot, cache_dir() / "patches")
    rep = verify(ov, tc, [a["goarch"]], a["seconds"], a["seed"], Path(a["replay_dir"]), a["baseline"], a["fuzz"],
                 a["name"], go_test=a["go_test"], jobs=a["jobs"], patch_path=a["patch_path"],
                 patch_text=a["patch_text"], prove=a["prove"], prove_only=a["prove_only"], strict=a.get("strict", False))
    rep = json.loads(json.dumps(rep, default=str))  # plain data, whatever the checks' evidence holds
    rep["worker"] = matrix.worker_name()
    return rep


