"""Runs the proof suite: plans obligations over platforms, shares identical runs, uses a process pool.

This is the tools layer: it never touches z3 itself (the workers call palloc.proofs.smt.run).
Two platforms whose constants give an obligation the same key share one solver run, so
`--all-platforms` costs what the distinct configurations cost. The manifest
(proofs/manifest.toml) records each obligation's expected verdict per platform and its time
budget; check_manifest compares a run with it.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import fnmatch
import importlib
import tomllib
from importlib import resources
from typing import Any

from palloc.spec import constants

THEOREM_MODULES = ("thm_packing", "thm_merge", "thm_no_double_alloc", "thm_addresses")
# Obligations on the runtime's own code (translation validation): they need a Go toolchain, so
# only plan(..., runtime=True) includes them (palloc prove --runtime).
RUNTIME_MODULES = ("thm_runtime",)
DEFAULT_TIMEOUT_S = 60.0


@dataclasses.dataclass(frozen=True)
class PlatformSpec:
    """A picklable way to name a platform: a real one, or a base with hypothetical changes."""

    base: str
    changes: tuple = ()

    def resolve(self):
        if not self.changes:
            return constants.platform(self.base)
        return constants.hypothetical(self.base, **dict(self.changes))

    @property
    def label(self) -> str:
        if not self.changes:
            return self.base
        return self.base + "+" + ",".join(f"{k}={v}" for k, v in self.changes)


def obligations(broken: bool = True, slow: bool = True, runtime: bool = False) -> list:
    out = []
    for m in THEOREM_MODULES + (RUNTIME_MODULES if runtime else ()):
        for ob in importlib.import_module(f"palloc.proofs.{m}").OBLIGATIONS:
            if (broken or not ob.is_variant) and (slow or not ob.slow):
                out.append(ob)
    return out


def _find(qualname: str):
    theorem, _, name = qualname.partition(".")
    for ob in obligations(runtime=theorem == "runtime"):
        if ob.qualname == qualname:
            return ob
    raise KeyError(qualname)


@dataclasses.dataclass
class Task:
    qualname: str
    spec: PlatformSpec
    shared_with: list[str]  # labels of every platform this run stands for


def plan(specs: list[PlatformSpec], broken: bool = False, only: str | None = None, slow: bool = False,
         runtime: bool = False) -> list[Task]:
    """One task per distinct (obligation, key); each lists the platforms it answers for.
    runtime: the obligations on the runtime's own code only (RUNTIME_MODULES)."""
    tasks: dict[tuple, Task] = {}
    resolved = [(s, s.resolve()) for s in specs]
    for ob in obligations(broken, slow, runtime):
        if runtime != (ob.theorem == "runtime"):
            continue
        if only and not fnmatch.fnmatch(ob.qualname, only) and only not in ob.qualname:
            continue
        for spec, p in resolved:
            if not ob.applies(p):
                continue
            k = (ob.qualname, ob.key(p))
            if k in tasks:
                tasks[k].shared_with.append(spec.label)
            else:
                tasks[k] = Task(ob.qualname, spec, [spec.label])
    # Longest first (by the manifest's measured times), so the pool's two workers finish together.
    try:
        measured = {q: e.get("measured_seconds", 1.0) for q, e in load_manifest().get("obligation", {}).items()}
    except (OSError, ValueError):
        measured = {}
    return sorted(tasks.values(), key=lambda t: -measured.get(t.qualname, 1.0))


def _work(qualname: str, spec: PlatformSpec, timeout_s: float) -> dict[str, Any]:
    from palloc.proofs import smt

    r = smt.run(_find(qualname), spec.resolve(), timeout_s)
    d = r.as_dict()
    d["platform"] = spec.label
    return d


def run(tasks: list[Task], timeout_s: float = DEFAULT_TIMEOUT_S, jobs: int = 2, progress=None) -> list[dict]:
    """Runs the tasks (slowest-first order does not matter much at this size); returns one dict
    per (obligation, platform) with verdict, seconds, counterexample, and the shared-run label."""
    out: list[dict] = []

    def expand(t: Task, d: dict):
        for label in t.shared_with:
            e = dict(d, platform=label, ran_on=t.spec.label)
            out.append(e)
        if progress:
            progress(t, d)

    if jobs <= 1:
        for t in tasks:
            expand(t, _work(t.qualname, t.spec, timeout_s))
        return out
    with cf.ProcessPoolExecutor(max_workers=jobs) as pool:
        futs = {pool.submit(_work, t.qualname, t.spec, timeout_s): t for t in tasks}
        for f in cf.as_completed(futs):
            expand(futs[f], f.result())
    return out


# --- the manifest --------------------------------------------------------------------------------


def load_manifest() -> dict[str, Any]:
    return tomllib.loads(resources.files("palloc.proofs").joinpath("manifest.toml").read_text())


def expected_verdict(manifest: dict, qualname: str, platform_label: str) -> str | None:
    """The verdict the manifest expects, or None when the obligation is not listed."""
    e = manifest.get("obligation", {}).get(qualname)
    if e is None:
        return None
    ce = e.get("counterexample_on", [])
    if ce == "all" or platform_label in ce:
        return "counterexample"
    return "proved"


def rerun_over_budget(manifest: dict, tasks: list[Task], results: list[dict],
                      timeout_s: float = DEFAULT_TIMEOUT_S) -> list[dict]:
    """Returns results with every run over its CPU budget re-run once, alone, keeping the lower
    CPU time: a budget is there to flag a solver that got slower on an obligation, not a run the
    host stalled once (one such run took 7.8 CPU s against 0.3-0.5 in every other)."""
    by = {(t.qualname, t.spec.label): t for t in tasks}
    again: dict[tuple[str, str], dict] = {}
    out = []
    for r in results:
        e = manifest.get("obligation", {}).get(r["obligation"])
        key = (r["obligation"], r["ran_on"])
        if e is not None and r["cpu_seconds"] > e["budget_seconds"] and key in by:
            if key not in again:
                again[key] = _work(key[0], by[key].spec, timeout_s)
            r = dict(r, cpu_seconds=min(r["cpu_seconds"], again[key]["cpu_seconds"]))
        out.append(r)
    return out


def check_manifest(manifest: dict, results: list[dict]) -> list[str]:
    """Every way a run differs from the manifest: verdict changed, budget exceeded, unlisted."""
    problems = []
    for r in results:
        q = r["obligation"]
        e = manifest.get("obligation", {}).get(q)
        if e is None:
            problems.append(f"{q}: not in proofs/manifest.toml")
            continue
        want = expected_verdict(manifest, q, r["platform"])
        if r["verdict"] != want:
            problems.append(f"{q} on {r['platform']}: {r['verdict']}, manifest expects {want}")
        # Budgets bound CPU seconds: wall time on a shared machine says more about the neighbours.
        if r["cpu_seconds"] > e["budget_seconds"]:
            problems.append(f"{q} on {r['ran_on']}: {r['cpu_seconds']:.2f} CPU s exceeds its budget of "
                            f"{e['budget_seconds']}s")
    return problems
