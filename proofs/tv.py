"""Translation validation of the Go runtime's page allocator: prove a patch, not only the model.

Mirrors no Go file. It checks the runtime's own functions of src/runtime/mpallocbits.go,
mpagealloc.go, mgcscavenge.go, mranges.go and mpagecache.go, as the toolchain under test has
them (Go 1.21.13-1.27.3), translated by goref/goast (front end: go/types, constants folded
for the platform) and proofs/smt_go.py (back end: Go's semantics in Z3). This module is the tools
layer (no z3 here), as Alive2 splits its tools from its semantics and its SMT encoding.

Three uses:

* check_patch: for a runtime patch, every translated function whose body - or a callee's body,
  or a constant or variable it reads - changed is checked original(x) == patched(x) for every x
  meeting the function's precondition (proofs/tv_functions.toml, each with its reason), error
  outcomes (throw, panic) included. Verdicts, graded:
    proved          equivalent for every such input
    counterexample  an input where they differ, confirmed by calling the function in the real
                    patched runtime through the helper (tv_call); `confirmed` says so. A
                    counterexample the helper does not reproduce is reported as verdict
                    "translator bug", never as a break
    unknown         the solver gave up, or a loop bound was not shown sufficient (the reason says)
    unsupported     a construct outside smt_go's subset ("unsupported: goto at file:line")
    not in scope    a changed function or variable palloc does not translate
* theorems (thm_runtime.py): the proof suite's theorems stated once, discharged on the Go code.
* model_equals_runtime: the model's SMT encodings (proofs/smt_encode.py) proved equal to the
  runtime's functions, per platform and Go version; MODEL_FUNCTIONS lists which are proved and
  which only tested.

API for `palloc verify-change` (the lead's integration):

    from palloc.proofs.tv import check_patch
    report = check_patch(toolchain, overlay.files, "amd64",
                         helper_binary=patched_helper, base_helper_binary=base_helper, timeout=20.0)
    report.exit_code()   # 0 all changed functions proved (and at least one checked), 1 a confirmed
                         # counterexample, 2 anything else (unknown, unsupported, not in scope,
                         # translator bug, nothing changed that palloc translates)
    report.to_json()     # {"goarch", "platform", "version", "verdict", "seconds", "functions": [...]}
    print(report.format())

Each entry of report.functions is a FunctionVerdict: name, file, verdict, reason, changed (why
it was checked), input (parameter -> value), outputs of the original and the patched code,
confirmed (True / False / None when no helper ran), helper (the helper's outputs), go_test
(Go source of a TestX in package runtime_test showing it: it fails on the patched runtime and
passes on the original) and seconds.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from palloc.spec.errors import PallocError

PROVED, COUNTEREXAMPLE, UNKNOWN, UNSUPPORTED = "proved", "counterexample", "unknown", "unsupported"
NOT_IN_SCOPE, TRANSLATOR_BUG = "not in scope", "translator bug"
DEFAULT_TIMEOUT_S = 20.0


@functools.cache
def function_table() -> dict:
    """proofs/tv_functions.toml: the translated functions, their preconditions and bounds."""
    return tomllib.loads(resources.files("palloc.proofs").joinpath("tv_functions.toml").read_text())


def scope() -> list[str]:
    """The Go names of every translated function (the stated scope)."""
    return list(function_table()["func"])


def scope_files() -> list[str]:
    return sorted({e["file"] for e in function_table()["func"].values()})


def split_platform(name: str) -> tuple[str, str]:
    goos, _, goarch = name.partition("/")
    return goos, goarch


def programs(tc, platforms: list[str], overlay: dict[str, str] | None = None, files: list[str] = ()):
    """Translates the scope for each platform ("linux/amd64"): smt_go.Program per platform."""
    from palloc.goref.goast import translate
    from palloc.proofs.smt_go import Program

    res = translate(tc, [split_platform(p) for p in platforms], scope(), overlay, files=list(files))
    out = []
    for name, r in zip(platforms, res):
        if r.get("error"):
            raise PallocError(f"goast could not read the runtime for {name}: {r['error']}")
        out.append(Program(r))
    return out


def specs_for(prog) -> dict:
    from palloc.proofs.smt_go import resolve_specs

    return resolve_specs(function_table(), prog.consts)


# --- what a patch changed -----------------------------------------------------------------------


def _type_sig(types: list, i: int, memo: dict, seen=()) -> str:
    if i in memo:
        return memo[i]
    t = types[i]
    if i in seen or t.get("name"):
        # A named type is its name here (its definition is compared where it is used).
        sig = "|".join([t.get("name", "?"), t["kind"], str(t.get("bits", "")), str(t.get("len", ""))])
        if i not in seen and t["kind"] in ("struct", "array"):
            seen = seen + (i,)
            inner = [_type_sig(types, t["elem"], memo, seen)] if "elem" in t else []
            inner += [f"{f['name']}:{_type_sig(types, f['type'], memo, seen)}" for f in t.get("fields") or []]
            sig += "{" + ",".join(inner) + "}"
        memo[i] = sig
        return sig
    seen = seen + (i,)
    parts = [t["kind"], str(t.get("bits", "")), str(t.get("signed", "")), str(t.get("len", ""))]
    if "elem" in t:
        parts.append(_type_sig(types, t["elem"], memo, seen))
    for f in t.get("fields") or []:
        parts.append(f"{f['name']}:{_type_sig(types, f['type'], memo, seen)}")
    memo[i] = "|".join(parts)
    return memo[i]


def canonical(res: dict, tree: Any) -> Any:
    """A function tree without source positions, its types spelled out and the package variables
    it reads replaced by their folded initializers, so that two versions compare equal exactly
    when the code (with the platform's constants) is the same."""
    types = res["types"]
    globs = res.get("globals") or {}
    memo = res.setdefault("_sig_memo", {})

    def go(n):
        if isinstance(n, dict):
            out = {}
            for k, v in n.items():
                if k in ("pos", "file"):
                    continue
                if k in ("t", "type", "xt") and isinstance(v, int):
                    out[k] = _type_sig(types, v, memo)
                else:
                    out[k] = go(v)
            if n.get("k") == "global":
                g = globs.get(n["name"], {})
                out["init"] = json.dumps(g.get("init"), sort_keys=True)
                out["written"] = g.get("written")
            return out
        if isinstance(n, list):
            return [go(x) for x in n]
        return n

    return go(tree)


def _callees(tree) -> set[str]:
    out: set[str] = set()

    def go(n):
        if isinstance(n, dict):
            if n.get("k") == "call" and "callee" in n:
                out.add(n["callee"])
            if n.get("k") == "func":
                out.add(n["name"])
            for v in n.values():
                go(v)
        elif isinstance(n, list):
            for v in n:
                go(v)

    go(tree)
    return out


def changed_functions(base: dict, patched: dict, in_scope: list[str] | None = None) -> tuple[dict, list[str]]:
    """Compares two goast results (the original runtime and the patched one, same platform).

    Returns (changed, outside): changed maps each function of in_scope (default: the stated
    scope) whose body, a callee's body (transitively) or a package variable it reads changed to
    why ("body changed", "callee findBitRange64 changed"); outside lists what changed that is not
    in scope ("pageAlloc.update", "variable maxOffAddr", "pallocBits.newHelper (added)").
    """
    in_scope = scope() if in_scope is None else in_scope
    fa, fb = base["funcs"], patched["funcs"]
    own = {}
    for name in set(fa) | set(fb):
        if name not in fa:
            own[name] = "added"
        elif name not in fb:
            own[name] = "deleted"
        elif canonical(base, fa[name]) != canonical(patched, fb[name]):
            own[name] = "body changed"
    graph = {n: _callees(t["body"]) for n, t in fb.items()}
    graph.update({n: _callees(t["body"]) for n, t in fa.items() if n not in graph})

    @functools.cache
    def reason(n: str, depth: int = 0) -> str | None:
        if n in own:
            return own[n]
        if depth > 50:
            return None
        for c in sorted(graph.get(n, ())):
            if c != n and reason(c, depth + 1):
                return f"callee {c} changed"
        return None

    changed = {}
    for n in in_scope:
        r = reason(n)
        if r:
            changed[n] = r
    outside = sorted(f"{n} ({w})" if w in ("added", "deleted") else n for n, w in own.items() if n not in in_scope)
    va, vb = base.get("file_vars") or {}, patched.get("file_vars") or {}
    for v in sorted(set(va) | set(vb)):
        a, b = va.get(v, {}), vb.get(v, {})
        if (a.get("src"), a.get("init")) != (b.get("src"), b.get("init")):
            outside.append(f"variable {v}")
    return changed, outside


# --- values as words, as the helper's tv_call takes them ------------------------------------------


def flatten_value(prog, t, v) -> list[int]:
    if t.kind == "int":
        return [int(v) & ((1 << t.bits) - 1)]
    if t.kind == "bool":
        return [1 if v else 0]
    if t.kind in ("array", "slice"):
        out = []
        for x in v:
            out += flatten_value(prog, t.elem, x)
        return out
    if t.kind == "struct":
        out = []
        for n, ft, _ in t.fields:
            out += flatten_value(prog, ft, v[n])
        return out
    if t.kind == "pointer":
        return flatten_value(prog, t.elem, v)
    raise PallocError(f"cannot pass a {t.kind} to the helper")


def _params(prog, fname):
    f = prog.funcs[fname]
    return ([f["recv"]] if "recv" in f else []) + f["params"]


def args_words(prog, fname: str, args: dict) -> list[int]:
    out = []
    for p in _params(prog, fname):
        out += flatten_value(prog, prog.t(p["type"]), args[p["name"]])
    return out


def outputs_words(prog, fname: str, outputs: dict) -> list[int]:
    """The translation's outputs in tv_call's order: results, then each pointer's final value."""
    f = prog.funcs[fname]
    words = []
    for (name, v), r in zip(list(outputs.items()), f["results"]):
        words += flatten_value(prog, prog.t(r["type"]), v)
    for p in _params(prog, fname):
        t = prog.t(p["type"])
        if t.kind == "pointer":
            words += flatten_value(prog, t, outputs["*" + p["name"]])
    return words


def helper_outcome(result: dict) -> dict:
    """A tv_call result as an outcome: {"outcome": "ok" | "throw" | "panic" | "error", "words"}."""
    k = result.get("kind")
    if k == "ok":
        return {"outcome": "ok", "words": [int(x) for x in result["out"]]}
    if k == "go-throw":
        return {"outcome": "throw", "words": [], "message": result.get("msg", "")}
    if k == "go-panic":
        return {"outcome": "panic", "words": [], "message": result.get("msg", "")}
    return {"outcome": "error", "words": [], "message": f"{k}: {result.get('msg', '')}"}


def concrete_outcome(prog, fname: str, run: dict) -> dict:
    if run["outcome"] != "ok":
        return {"outcome": run["outcome"], "words": [], "message": run.get("message", "")}
    return {"outcome": "ok", "words": outputs_words(prog, fname, run["outputs"])}


def same_outcome(a: dict, b: dict) -> bool:
    return a["outcome"] == b["outcome"] and (a["outcome"] != "ok" or a["words"] == b["words"])


# --- printing like a debugger -----------------------------------------------------------------------


def _hex(v) -> str:
    return hex(v) if isinstance(v, int) and not isinstance(v, bool) and v > 9 else str(v).lower()


def describe_value(v, type_name: str = "", consts: dict | None = None) -> str:
    """A value as code that recreates it: bitmaps as hex words, summaries as (start,max,end)."""
    if isinstance(v, list):
        return "{" + ", ".join(_hex(x) if not isinstance(x, (list, dict)) else describe_value(x) for x in v) + "}"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {describe_value(x)}" for k, x in v.items()) + "}"
    if type_name == "pallocSum" and consts and isinstance(v, int):
        L, M = consts["logMaxPackedValue"], consts["maxPackedValue"]
        if v >> 63:
            return f"{_hex(v)} (start,max,end)=({M},{M},{M})"
        return f"{_hex(v)} (start,max,end)=({v & (M - 1)},{(v >> L) & (M - 1)},{(v >> 2 * L) & (M - 1)})"
    return _hex(v)


def _describe_args(prog, fname, args: dict) -> str:
    parts = []
    for p in _params(prog, fname):
        t = prog.t(p["type"])
        tn = (t.elem.name if t.kind in ("pointer", "slice") and t.elem else t.name)
        v = args[p["name"]]
        if t.kind == "slice" and t.elem.name == "pallocSum":
            parts.append(f"{p['name']}=[" + ", ".join(describe_value(x, "pallocSum", prog.consts) for x in v) + "]")
        else:
            parts.append(f"{p['name']}={describe_value(v, tn, prog.consts)}")
    return ", ".join(parts)


def _describe_outcome(prog, fname, run: dict) -> str:
    if run["outcome"] != "ok":
        return f"{run['outcome']} {run.get('message', '')!r} at {run.get('pos', '?')}"
    f = prog.funcs[fname]
    parts = []
    for (name, v), r in zip(run["outputs"].items(), f["results"] + [None] * 99):
        tn = prog.t(r["type"]).name if r else ""
        parts.append(f"{name}={describe_value(v, tn, prog.consts)}")
    return ", ".join(parts)


# --- Go tests ----------------------------------------------------------------------------------------


def go_test_source(fname: str, words: list[int], want: dict, got: dict, platform: str) -> str:
    """A test in package runtime_test showing the counterexample: it calls the function through
    the overlay's PallocTVCall and expects the original runtime's outputs, so it passes on the
    original runtime and fails on the patched one."""
    test = "TestPalloctv" + "".join(c for c in fname.title() if c.isalnum())
    args = ", ".join(hex(w) for w in words)
    lines = [
        "package runtime_test",
        "",
        "import (",
        '\t"runtime"',
        '\t"testing"',
        ")",
        "",
        f"// {test}: translation validation (palloc verify-change --prove-only, {platform}) found an",
        f"// input on which the patched {fname} differs from the original.",
        f"func {test}(t *testing.T) {{",
        f"\targs := []uint64{{{args}}}",
    ]
    if want["outcome"] == "ok":
        lines += [
            f"\twant := []uint64{{{', '.join(hex(w) for w in want['words'])}}} // the original runtime's outputs",
        ]
        if got["outcome"] == "panic":
            lines += ["\tdefer func() {", "\t\tif r := recover(); r != nil {",
                      f'\t\t\tt.Errorf("{fname} panicked: %v", r)', "\t\t}", "\t}()"]
        elif got["outcome"] == "throw":
            lines.append(f"\t// The patched runtime throws here ({got.get('message', '')}): the test binary dies.")
        lines += [
            f'\tgot, ok := runtime.PallocTVCall("{fname}", args)',
            "\tif !ok {",
            f'\t\tt.Fatalf("PallocTVCall does not know {fname}")',
            "\t}",
            "\tfor i := range want {",
            "\t\tif i >= len(got) || got[i] != want[i] {",
            f'\t\t\tt.Errorf("{fname}: output word %d = %#x, want %#x (all: %#x)", i, got[i], want[i], got)',
            "\t\t\treturn",
            "\t\t}",
            "\t}",
        ]
    elif want["outcome"] == "panic":
        lines += [
            "\tdefer func() {",
            "\t\tif recover() == nil {",
            f'\t\t\tt.Errorf("{fname} did not panic, as the original does")',
            "\t\t}",
            "\t}()",
            f'\truntime.PallocTVCall("{fname}", args)',
        ]
    else:
        lines += [f"\t// The original runtime throws on this input ({want.get('message', '')}); the patched one",
                  f"\t// returns {got.get('words')}. A throw cannot be caught in a test: run it by hand.",
                  f'\tt.Skip("the original {fname} throws here")']
    lines.append("}")
    return "\n".join(lines) + "\n"


# --- the report --------------------------------------------------------------------------------------


@dataclasses.dataclass
class FunctionVerdict:
    name: str
    file: str
    verdict: str
    reason: str = ""
    changed: str = ""
    input: dict | None = None
    input_text: str = ""
    globals: dict | None = None
    original: str = ""  # the original's outcome, printed
    patched: str = ""
    confirmed: bool | None = None
    helper: str = ""
    go_test: str = ""
    seconds: float = 0.0

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class TVReport:
    goarch: str
    platform: str
    version: str
    functions: list[FunctionVerdict]
    seconds: float = 0.0
    note: str = ""

    @property
    def verdict(self) -> str:
        vs = [f.verdict for f in self.functions]
        if any(v == COUNTEREXAMPLE and f.confirmed for v, f in zip(vs, self.functions)):
            return "refuted"
        if vs and all(v == PROVED for v in vs):
            return "proved equivalent"
        if not vs:
            return "nothing translated changed"
        return "undecided"

    def exit_code(self) -> int:
        """0: every changed function proved (and at least one); 1: a confirmed counterexample;
        2: anything else."""
        v = self.verdict
        return {"refuted": 1, "proved equivalent": 0}.get(v, 2)

    def to_json(self) -> dict:
        return {"goarch": self.goarch, "platform": self.platform, "version": self.version, "verdict": self.verdict,
                "exit_code": self.exit_code(), "seconds": round(self.seconds, 2), "note": self.note,
                "functions": [f.to_json() for f in self.functions]}

    def format(self) -> str:
        out = [f"translation validation on {self.platform} ({self.version}): {self.verdict} "
               f"[{len(self.functions)} function(s), {self.seconds:.1f} s]"]
        if self.note:
            out.append(f"  {self.note}")
        for f in self.functions:
            head = f"  {f.name} ({f.file}): {f.verdict}"
            if f.verdict == COUNTEREXAMPLE:
                head += {True: ", confirmed by the patched runtime", False: ", NOT reproduced by the runtime",
                         None: ", not confirmed (no helper ran)"}[f.confirmed]
            if f.changed:
                head += f"  [{f.changed}]"
            if f.seconds:
                head += f"  {f.seconds:.2f} s"
            out.append(head)
            if f.reason:
                out.append(f"      {f.reason}")
            if f.input is not None:
                out.append(f"      input:    {f.input_text or f.input}")
            if f.original:
                out.append(f"      original: {f.original}")
            if f.patched:
                out.append(f"      patched:  {f.patched}")
            if f.helper:
                out.append(f"      runtime:  {f.helper}")
        return "\n".join(out)


# --- check_patch -------------------------------------------------------------------------------------


def search_difference(prog_a, prog_b, fname: str, spec_a, spec_b, n: int = 150, seed: int = 0) -> dict | None:
    """Runs both translations concretely on n drawn inputs (random plus edges); returns the first
    input where they differ as a counterexample result, or None. Cheap, so it runs before the
    solver: a broken patch is usually refuted here in milliseconds."""
    import random

    from palloc.proofs import smt_go as G
    from palloc.proofs.tv_inputs import draws, global_draw

    r = random.Random(seed)
    try:
        for args in draws(prog_a, fname, spec_a, r, n):
            gins = global_draw(prog_a, spec_a, r)
            if gins and not G.holds(prog_a, spec_a, args, gins):
                continue
            ra = G.run_concrete(prog_a, fname, spec_a, args, gins)
            rb = G.run_concrete(prog_b, fname, spec_b, args, gins)
            if "incomplete" in (ra["outcome"], rb["outcome"]):
                continue  # the solver will say why
            if not same_outcome(concrete_outcome(prog_a, fname, ra), concrete_outcome(prog_b, fname, rb)):
                return {"verdict": COUNTEREXAMPLE, "reason": "", "input": args, "globals": gins, "found_by": "draws"}
    except (G.Unsupported, ValueError, KeyError):
        return None
    return None


def _run_helper(binary, goarch: str, fname: str, words: list[int]) -> dict:
    from palloc.goref.driver import GoHelper

    with GoHelper(binary, goarch=goarch, timeout=30) as h:
        return helper_outcome(h.call1({"op": "tv_call", "fn": fname, "args": words}))


def _helper_globals(binary, goarch: str) -> dict:
    """The run-time variables the translations read, as the helper's runtime has them."""
    from palloc.goref.driver import GoHelper

    with GoHelper(binary, goarch=goarch, timeout=30) as h:
        c = h.call1({"op": "constants"})
    return {"physPageSize": c["physPageSize"], "physHugePageSize": c["physHugePageSize"]}


def _runnable(name: str) -> bool:
    """Reports whether the helper of --goarch name runs here (natively or under its emulator)."""
    from palloc.goref.targets import target

    try:
        return target(name).runnable
    except PallocError:
        return False


def check_patch(toolchain, overlay_files: dict[str, str], goarch: str, *, goos: str = "linux",
                helper_binary=None, base_helper_binary=None, timeout: float = DEFAULT_TIMEOUT_S,
                confirm: bool = True, target: str | None = None) -> TVReport:
    """Checks every translated function a patch changes, on goos/goarch. See the module doc.

    overlay_files maps GOROOT-relative runtime paths to patched files (goref/patch.py
    Overlay.files). helper_binary: a helper built on the patched runtime for goarch (built here,
    once, if a counterexample needs confirming and none is given); base_helper_binary: one built
    on the original runtime, to check the original side of a counterexample too. timeout: solver
    seconds per function. target: the --goarch name of the helper that confirms a counterexample
    (goref/targets.py: "wasm" is js/wasm, "wasip1" wasip1/wasm; default goarch); it runs natively
    or under its emulator.
    """
    from palloc.goref.goast import translate
    from palloc.proofs import smt_go as G

    t0 = time.perf_counter()
    name = target or goarch
    platform = f"{goos}/{goarch}"
    files = sorted({Path(rel).name for rel in overlay_files if rel.startswith("src/runtime/")})
    res_a, = translate(toolchain, [(goos, goarch)], scope(), None, files=files)
    res_b, = translate(toolchain, [(goos, goarch)], scope(), overlay_files, files=files)
    for r, side in ((res_a, "original"), (res_b, "patched")):
        if r.get("error"):
            f = FunctionVerdict("(runtime)", "", UNSUPPORTED, f"goast could not read the {side} runtime: {r['error']}")
            return TVReport(goarch, platform, toolchain.version, [f], time.perf_counter() - t0)
    changed, outside = changed_functions(res_a, res_b)
    prog_a, prog_b = G.Program(res_a), G.Program(res_b)
    specs_a, specs_b = specs_for(prog_a), specs_for(prog_b)
    table = function_table()["func"]
    entries: list[FunctionVerdict] = []
    graph = {n: _callees(t["body"]) for n, t in res_b["funcs"].items()}

    def changed_callees(n, seen=None) -> set[str]:
        seen = set() if seen is None else seen
        out = set()
        for c in graph.get(n, ()):
            if c in seen or c == n:
                continue
            seen.add(c)
            if c in changed:
                out.add(c)
            out |= changed_callees(c, seen)
        return out

    deps = {f: changed_callees(f) for f in changed}
    order = sorted(changed, key=lambda f: (len(deps[f]), scope().index(f)))
    proved: set[str] = set()
    for fname in order:
        t1 = time.perf_counter()
        fv = FunctionVerdict(fname, table[fname]["file"], UNKNOWN, changed=changed[fname])
        if fname not in prog_a.funcs or fname not in prog_b.funcs:
            fv.verdict, fv.reason = UNSUPPORTED, "the function was added or deleted by the patch"
            entries.append(fv)
            continue
        d = deps[fname]
        if changed[fname] != "body changed" and d and d <= proved:
            # Its own code is the same; the callees it reaches are proved equivalent under their
            # preconditions. It suffices that every call of them here meets those.
            r = G.check_call_sites(prog_a, fname, specs_a[fname], specs_a, sorted(d), timeout_s=timeout)
            if r["verdict"] == PROVED:
                fv.verdict = PROVED
                fv.reason = (f"its own code is unchanged; {', '.join(sorted(d))} proved equivalent, and every call "
                             f"of them here meets their precondition")
                fv.seconds = time.perf_counter() - t1
                proved.add(fname)
                entries.append(fv)
                continue
        r = search_difference(prog_a, prog_b, fname, specs_a[fname], specs_b[fname])
        if r is None:
            abs_a, abs_b, hints = identical_loops(res_a, res_b, prog_a, prog_b, fname, table[fname])
            if abs_a:
                r = G.check_equivalent_abstract(prog_a, prog_b, fname, specs_a[fname], specs_b[fname], abs_a, abs_b,
                                                hints, timeout_s=timeout)
        if r is None:
            r = _equivalent(G, prog_a, prog_b, fname, specs_a[fname], specs_b[fname], timeout)
        if r["verdict"] == COUNTEREXAMPLE and r.get("globals") and confirm and _runnable(name):
            # Ask again with the run-time variables the helper's runtime really has, so the
            # counterexample can be confirmed there (or shown to need other page sizes).
            try:
                if helper_binary is None:
                    from palloc.goref.build import build_helper

                    helper_binary = build_helper(toolchain, name, overlay_files)
                pin = _helper_globals(helper_binary, name)
                r2 = _equivalent(G, prog_a, prog_b, fname, specs_a[fname], specs_b[fname], timeout, pin=pin)
                if r2["verdict"] == COUNTEREXAMPLE:
                    r = r2
                elif r2["verdict"] == PROVED:
                    r = dict(r, reason=f"only with run-time values other than this host's {pin}")
            except PallocError:
                pass
        fv.verdict, fv.reason = r["verdict"], r.get("reason", "")
        if fv.verdict == PROVED:
            proved.add(fname)
        if fv.verdict == COUNTEREXAMPLE:
            _settle_counterexample(fv, r, prog_a, prog_b, specs_a[fname], specs_b[fname], toolchain, overlay_files,
                                   name, platform, helper_binary, base_helper_binary, confirm)
        elif r.get("input") is not None:
            fv.input = r["input"]
        fv.seconds = time.perf_counter() - t1
        entries.append(fv)
    entries.sort(key=lambda e: scope().index(e.name))
    for name in outside:
        entries.append(FunctionVerdict(name, "", NOT_IN_SCOPE,
                                       "changed, but palloc does not translate it: the differential carries it"))
    note = "" if entries else "the patch changes no function palloc translates"
    return TVReport(goarch, platform, toolchain.version, entries, time.perf_counter() - t0, note)


def _loop_ordinal(prog, fname: str, loop) -> tuple[int, dict] | None:
    """The ordinal and node of a loop of fname named by its label ("outer") or its ordinal."""
    ords = prog.loop_ordinals(fname)
    by_ord = {}

    def walk(n, label=None):
        if isinstance(n, dict):
            if n.get("s") in ("for", "range"):
                by_ord[ords[id(n)]] = (n, label)
            for k, v in n.items():
                walk(v, n.get("label") if n.get("s") == "labeled" and k == "stmt" else None)
        elif isinstance(n, list):
            for v in n:
                walk(v)

    walk(prog.funcs[fname]["body"])
    for o, (node, label) in by_ord.items():
        if (isinstance(loop, int) and o == loop) or (isinstance(loop, str) and label == loop):
            return o, node
    return None


def identical_loops(res_a: dict, res_b: dict, prog_a, prog_b, fname: str, entry: dict) -> tuple[dict, dict, dict]:
    """The loops tv_functions.toml lets fname abstract (`abstract`) that are the same code in both
    versions (the same tree, types and constants; no call but an intrinsic, no write to memory):
    ({(fname, ordinal): key} for each version, {key: hint}). Empty when none is."""
    from palloc.proofs import smt_go as G

    abs_a, abs_b, hints = {}, {}, {}
    for a in entry.get("abstract", []):
        la, lb = _loop_ordinal(prog_a, fname, a["loop"]), _loop_ordinal(prog_b, fname, a["loop"])
        if la is None or lb is None:
            continue
        if canonical(res_a, la[1]) != canonical(res_b, lb[1]):
            continue
        label = a["loop"] if isinstance(a["loop"], str) else None
        if G.loop_shape(la[1], label, lambda t: prog_a.t(t).kind)["unsupported"]:
            continue
        key = f"{fname}#{a['loop']}"
        abs_a[(fname, la[0])], abs_b[(fname, lb[0])] = key, key
        if a.get("hint"):
            hints[key] = dict(a["hint"])
    return abs_a, abs_b, hints


def _equivalent(G, prog_a, prog_b, fname, spec_a, spec_b, timeout, pin=None) -> dict:
    """check_equivalent, by the cases tv_functions.toml states (split) where it states them."""
    if spec_a.split:
        return G.check_equivalent_split(prog_a, prog_b, fname, spec_a, spec_b, timeout_s=max(timeout, 60.0), pin=pin)
    return G.check_equivalent(prog_a, prog_b, fname, spec_a, spec_b, timeout_s=timeout, pin=pin)


def _settle_counterexample(fv, r, prog_a, prog_b, spec_a, spec_b, tc, overlay_files, goarch, platform,
                           helper_binary, base_helper_binary, confirm):
    from palloc.proofs import smt_go as G

    fname = fv.name
    args, gins = r["input"], r.get("globals") or {}
    fv.input, fv.globals = args, gins or None
    run_a = G.run_concrete(prog_a, fname, spec_a, args, gins)
    run_b = G.run_concrete(prog_b, fname, spec_b, args, gins)
    oa, ob = concrete_outcome(prog_a, fname, run_a), concrete_outcome(prog_b, fname, run_b)
    fv.original, fv.patched = _describe_outcome(prog_a, fname, run_a), _describe_outcome(prog_b, fname, run_b)
    fv.input_text = _describe_args(prog_a, fname, args) + (f"; globals {gins}" if gins else "")
    if same_outcome(oa, ob):
        fv.verdict = TRANSLATOR_BUG
        fv.reason = "the solver's input gives equal outcomes when the translations are run concretely"
        return
    words = args_words(prog_a, fname, args)
    fv.go_test = go_test_source(fname, words, oa, ob, platform)
    if not confirm or not _runnable(goarch):
        fv.confirmed = None
        if not _runnable(goarch):
            fv.reason = (fv.reason + "; " if fv.reason else "") + f"the {goarch} helper cannot run here (`palloc goref info`)"
        return
    try:
        if helper_binary is None:
            from palloc.goref.build import build_helper

            helper_binary = build_helper(tc, goarch, overlay_files)
        hb = _run_helper(helper_binary, goarch, fname, words)
        ha = _run_helper(base_helper_binary, goarch, fname, words) if base_helper_binary else None
    except PallocError as e:
        fv.confirmed = None
        fv.reason = (fv.reason + "; " if fv.reason else "") + f"helper not run: {e}"
        return
    fv.helper = (f"{hb['outcome']} " + " ".join(hex(w) for w in hb["words"])).strip()
    ok_b = same_outcome(hb, ob)
    ok_a = ha is None or same_outcome(ha, oa)
    if ok_b and ok_a:
        fv.confirmed = True
    elif gins and fv.reason.startswith("only with"):
        fv.confirmed = None  # the helper's physPageSize is not the solver's
    else:
        fv.confirmed = False
        fv.verdict = TRANSLATOR_BUG
        side = "patched" if not ok_b else "original"
        fv.reason = (f"the {side} runtime computes {hb if not ok_b else ha} here, not what its translation says: "
                     "a bug of palloc's translator, not of the patch")


# --- the mutant corpus ----------------------------------------------------------------------------


def run_corpus(toolchain=None, goarch: str = "amd64", ids: list[str] | None = None, *, confirm: bool = True,
               timeout: float = DEFAULT_TIMEOUT_S, progress=print) -> list[dict]:
    """check_patch on every patch of goref/mutants (or those named by ids). One dict per patch:
    id, kind, expected, verdict (the stage's), exit_code, seconds, functions."""
    import tempfile

    from palloc.goref.patch import apply_patch
    from palloc.goref.toolchain import find_toolchain

    tc = toolchain or find_toolchain()
    man = tomllib.loads(resources.files("palloc.goref.mutants").joinpath("manifest.toml").read_text())
    out = []
    for m in man["mutant"]:
        if ids and m["id"] not in ids:
            continue
        with tempfile.TemporaryDirectory(prefix="palloc-tv-") as d:
            patch = Path(str(resources.files("palloc.goref.mutants").joinpath(m["patch"])))
            ov = apply_patch(patch, tc.goroot, Path(d) / "ov")
            rep = check_patch(tc, ov.files, goarch, confirm=confirm, timeout=timeout)
        row = {"id": m["id"], "kind": m["kind"], "expected": m["expected"], "verdict": rep.verdict,
               "exit_code": rep.exit_code(), "seconds": round(rep.seconds, 2),
               "functions": [{"name": f.name, "verdict": f.verdict, "confirmed": f.confirmed,
                              "seconds": round(f.seconds, 2), "reason": f.reason[:300]} for f in rep.functions]}
        out.append(row)
        if progress:
            progress(f"{m['id']:45s} {rep.verdict:28s} {rep.seconds:6.1f} s  "
                     + ", ".join(f"{f.name}={f.verdict}" for f in rep.functions))
    return out


def run_theorems(tc, platforms: list[str] | None = None, *, only: str | None = None, jobs: int = 2,
                 slow: bool = False, timeout: float = 120.0) -> list[dict]:
    """Runs thm_runtime's obligations on the given platforms (default: all 17) with tc's runtime;
    platforms whose translated code and constants agree share one solver run."""
    import os

    from palloc.proofs import runner
    from palloc.spec import constants

    names = platforms or constants.platform_names()
    os.environ["PALLOC_GOROOT"] = str(tc.goroot)  # the workers translate with the same toolchain
    programs(tc, names)  # one goast run for every platform, cached on disk for the workers
    ver = ".".join(tc.version.removeprefix("go").split(".")[:2])
    specs = [runner.PlatformSpec(n) for n in names]
    if ver != constants.DEFAULT_GO_VERSION:
        specs = [runner.PlatformSpec(n, (("go_version", ver),)) for n in names]
    tasks = runner.plan(specs, runtime=True, only=only, slow=slow)
    return runner.run(tasks, timeout_s=timeout, jobs=jobs)
