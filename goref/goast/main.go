// Command goast reads the Go runtime's source (or a patched copy of it) for one GOOS/GOARCH and
// writes, as JSON, a typed syntax tree of the functions asked for and of every runtime function
// they call, with every constant expression folded to its value on that platform.
//
// It is palloc's front end for translation validation (palloc/proofs/smt_go.py is the back end):
// package runtime is type-checked by go/types exactly as the compiler would see it for the
// platform (go/build selects the files by GOOS, GOARCH and the toolchain's tool tags; imports are
// type-checked from source), so a folded constant is the compiler's own value.
//
// Standard library only; built by palloc/goref/goast.py with the toolchain under test.
//
// Input (stdin), one JSON document:
//
//	{"goroot": "/usr/local/go",
//	 "jobs": [{"goos": "linux", "goarch": "amd64", "tool_tags": ["goexperiment.regabiargs", ...],
//	           "overlay": {"src/runtime/mpallocbits.go": "/tmp/patched.go", "src/runtime/x.go": ""},
//	           "funcs": ["packPallocSum", "pallocBits.find"], "stop": ["throw"]}]}
//
// Output (stdout): {"schema": 1, "results": [one per job]}; a result holds "consts" (every
// integer and boolean constant of package runtime), "types" (a table; expressions name a type by
// its index), "funcs" (name -> tree), "globals" (package variables the trees read, with a folded
// initializer when it is constant and whether anything in the package writes them), "missing"
// (asked-for names that do not exist) and "error" (set when the job failed as a whole).
//
// Methods are named Recv.method whatever the receiver's pointer-ness ("pallocBits.find"); other
// packages' functions by import path ("internal/runtime/sys.TrailingZeros64"). A construct this
// program does not translate becomes {"k": "unsupported"} / {"s": "unsupported"} with a "what",
// so the back end can name it with its place instead of guessing.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/build"
	"go/constant"
	"go/importer"
	"go/parser"
	"go/printer"
	"go/token"
	"go/types"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

const schema = 1

type job struct {
	GOOS     string            `json:"goos"`
	GOARCH   string            `json:"goarch"`
	ToolTags []string          `json:"tool_tags"`
	Overlay  map[string]string `json:"overlay"`
	Funcs    []string          `json:"funcs"`
	Files    []string          `json:"files"` // also every function declared in these files (base names)
	Stop     []string          `json:"stop"`
}

type request struct {
	GOROOT string `json:"goroot"`
	Jobs   []job  `json:"jobs"`
}

type obj = map[string]any

func main() {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, "goast: bad request:", err)
		os.Exit(2)
	}
	var results []obj
	for _, j := range req.Jobs {
		results = append(results, runJob(req.GOROOT, j))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(obj{"schema": schema, "results": results}); err != nil {
		fmt.Fprintln(os.Stderr, "goast:", err)
		os.Exit(2)
	}
	os.Stdout.Write(buf.Bytes())
}

// --- loading: go/build with the overlay, go/parser, go/types ------------------------------------

func runJob(goroot string, j job) (res obj) {
	res = obj{"goos": j.GOOS, "goarch": j.GOARCH}
	defer func() {
		if r := recover(); r != nil {
			res["error"] = fmt.Sprint(r)
		}
	}()
	runtimeDir := filepath.Join(goroot, "src", "runtime")
	over := map[string]string{} // absolute path in GOROOT -> replacement ("" deletes)
	for rel, dst := range j.Overlay {
		over[filepath.Join(goroot, filepath.FromSlash(rel))] = dst
	}
	ctx := build.Default
	ctx.GOROOT = goroot
	ctx.GOOS, ctx.GOARCH = j.GOOS, j.GOARCH
	ctx.CgoEnabled = false
	ctx.ToolTags = j.ToolTags
	ctx.OpenFile = func(path string) (io.ReadCloser, error) {
		if dst, ok := over[path]; ok {
			if dst == "" {
				return nil, os.ErrNotExist
			}
			path = dst
		}
		return os.Open(path)
	}
	ctx.ReadDir = func(dir string) ([]os.FileInfo, error) {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		var out []os.FileInfo
		seen := map[string]bool{}
		for _, e := range ents {
			p := filepath.Join(dir, e.Name())
			if dst, ok := over[p]; ok && dst == "" {
				continue
			}
			fi, err := e.Info()
			if err != nil {
				return nil, err
			}
			if dst, ok := over[p]; ok {
				if fi2, err := os.Stat(dst); err == nil {
					fi = renamed{fi2, e.Name()}
				}
			}
			seen[e.Name()] = true
			out = append(out, fi)
		}
		for p, dst := range over { // files the patch adds
			if filepath.Dir(p) == dir && dst != "" && !seen[filepath.Base(p)] {
				if fi, err := os.Stat(dst); err == nil {
					out = append(out, renamed{fi, filepath.Base(p)})
				}
			}
		}
		sort.Slice(out, func(a, b int) bool { return out[a].Name() < out[b].Name() })
		return out, nil
	}
	// The source importer reads build.Default (a pointer to it), so dependencies are selected for
	// the same platform as package runtime.
	build.Default.GOOS, build.Default.GOARCH = j.GOOS, j.GOARCH
	build.Default.CgoEnabled = false
	build.Default.ToolTags = j.ToolTags
	build.Default.GOROOT = goroot

	pkg, err := ctx.ImportDir(runtimeDir, 0)
	if err != nil {
		panic(fmt.Sprintf("go/build: %v", err))
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, name := range pkg.GoFiles {
		path := filepath.Join(runtimeDir, name)
		rc, err := ctx.OpenFile(path)
		if err != nil {
			panic(err)
		}
		src, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			panic(err)
		}
		f, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution)
		if err != nil {
			panic(fmt.Sprintf("parse: %v", err))
		}
		files = append(files, f)
	}
	var typeErrs []string
	conf := types.Config{
		Importer: importer.ForCompiler(fset, "source", nil),
		Sizes:    types.SizesFor("gc", j.GOARCH),
		Error: func(err error) {
			if len(typeErrs) < 5 {
				typeErrs = append(typeErrs, err.Error())
			}
		},
	}
	info := &types.Info{
		Types:      map[ast.Expr]types.TypeAndValue{},
		Defs:       map[*ast.Ident]types.Object{},
		Uses:       map[*ast.Ident]types.Object{},
		Selections: map[*ast.SelectorExpr]*types.Selection{},
	}
	tpkg, _ := conf.Check("runtime", fset, files, info)
	if len(typeErrs) > 0 {
		panic("type-checking package runtime failed: " + strings.Join(typeErrs, "; "))
	}
	e := &emitter{fset: fset, info: info, pkg: tpkg, sizes: conf.Sizes, typeIDs: map[types.Type]int{},
		decls: map[string]*ast.FuncDecl{}, globals: map[string]obj{}, stop: map[string]bool{}}
	for _, s := range j.Stop {
		e.stop[s] = true
	}
	wantFile := map[string]bool{}
	for _, f := range j.Files {
		wantFile[f] = true
	}
	work := append([]string(nil), j.Funcs...)
	for _, f := range files {
		inFile := wantFile[filepath.Base(fset.Position(f.Pos()).Filename)]
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Body != nil {
				e.decls[funcDeclName(fd)] = fd
				if inFile {
					work = append(work, funcDeclName(fd))
				}
			}
		}
	}
	e.files = files
	funcs := obj{}
	var missing []string
	for len(work) > 0 {
		name := work[0]
		work = work[1:]
		if _, done := funcs[name]; done {
			continue
		}
		fd, ok := e.decls[name]
		if !ok {
			missing = append(missing, name)
			continue
		}
		e.callees = nil
		funcs[name] = e.funcDecl(fd)
		for _, c := range e.callees {
			if _, done := funcs[c]; !done && !e.stop[c] {
				if _, ok := e.decls[c]; ok {
					work = append(work, c)
				}
			}
		}
	}
	// Package variables declared in the asked-for files, so a patch that changes one (say
	// maxOffAddr's initializer) is seen even when no translated function reads it.
	fileVars := obj{}
	varSpecs(files, func(f *ast.File, vs *ast.ValueSpec) {
		if !wantFile[filepath.Base(fset.Position(f.Pos()).Filename)] {
			return
		}
		var buf bytes.Buffer
		printer.Fprint(&buf, fset, vs)
		for i, n := range vs.Names {
			v := obj{"src": buf.String(), "pos": e.pos(n.Pos())}
			if i < len(vs.Values) {
				if c, ok := e.constValue(vs.Values[i]); ok {
					v["init"] = c
				}
			}
			fileVars[n.Name] = v
		}
	})
	res["file_vars"] = fileVars
	res["consts"] = e.consts()
	res["types"] = e.types
	res["funcs"] = funcs
	res["globals"] = e.globals
	res["missing"] = missing
	res["ptr_size"] = conf.Sizes.Sizeof(types.Typ[types.Uintptr])
	return res
}

type renamed struct {
	os.FileInfo
	name string
}

func (r renamed) Name() string { return r.name }

func funcDeclName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	t := fd.Recv.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	if ix, ok := t.(*ast.IndexExpr); ok { // generic receiver
		t = ix.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name + "." + fd.Name.Name
	}
	return "?." + fd.Name.Name
}

// --- the emitter ------------------------------------------------------------------------------

type emitter struct {
	fset    *token.FileSet
	info    *types.Info
	pkg     *types.Package
	sizes   types.Sizes
	files   []*ast.File
	decls   map[string]*ast.FuncDecl
	stop    map[string]bool
	types   []obj
	typeIDs map[types.Type]int
	globals map[string]obj
	written map[types.Object]bool
	// Per function.
	localIDs map[types.Object]int
	callees  []string
}

func (e *emitter) pos(p token.Pos) string {
	ps := e.fset.Position(p)
	return fmt.Sprintf("%s:%d", filepath.Base(ps.Filename), ps.Line)
}

func (e *emitter) consts() obj {
	out := obj{}
	scope := e.pkg.Scope()
	for _, name := range scope.Names() {
		c, ok := scope.Lookup(name).(*types.Const)
		if !ok {
			continue
		}
		switch c.Val().Kind() {
		case constant.Int:
			out[name] = c.Val().ExactString()
		case constant.Bool:
			out[name] = constant.BoolVal(c.Val())
		}
	}
	return out
}

// typ interns t in the type table and returns its index.
func (e *emitter) typ(t types.Type) int {
	if id, ok := e.typeIDs[t]; ok {
		return id
	}
	for k, id := range e.typeIDs { // identical types share an entry
		if types.Identical(k, t) {
			e.typeIDs[t] = id
			return id
		}
	}
	id := len(e.types)
	e.typeIDs[t] = id
	ent := obj{}
	e.types = append(e.types, ent)
	if n, ok := t.(*types.Named); ok {
		ent["name"] = n.Obj().Name()
		if n.Obj().Pkg() != nil && n.Obj().Pkg() != e.pkg {
			ent["name"] = n.Obj().Pkg().Path() + "." + n.Obj().Name()
		}
	}
	u := t.Underlying()
	switch u := u.(type) {
	case *types.Basic:
		switch {
		case u.Info()&types.IsBoolean != 0:
			ent["kind"] = "bool"
		case u.Info()&types.IsInteger != 0 && u.Info()&types.IsUntyped == 0:
			ent["kind"] = "int"
			ent["bits"] = 8 * e.sizes.Sizeof(u)
			ent["signed"] = u.Info()&types.IsUnsigned == 0
			if _, ok := ent["name"]; !ok {
				ent["name"] = u.Name()
			}
		case u.Kind() == types.UntypedInt:
			// Only a shift count stays untyped; any count of 64 or more shifts everything out.
			ent["kind"] = "int"
			ent["bits"] = 64
			ent["signed"] = false
			ent["name"] = "untyped int"
			ent["untyped"] = true
		case u.Info()&types.IsString != 0:
			ent["kind"] = "string"
		case u.Kind() == types.UnsafePointer:
			ent["kind"] = "unsupported"
			ent["what"] = "unsafe.Pointer"
		default:
			ent["kind"] = "unsupported"
			ent["what"] = "type " + u.String()
		}
	case *types.Array:
		ent["kind"] = "array"
		ent["len"] = u.Len()
		ent["elem"] = e.typ(u.Elem())
	case *types.Slice:
		ent["kind"] = "slice"
		ent["elem"] = e.typ(u.Elem())
	case *types.Pointer:
		ent["kind"] = "pointer"
		ent["elem"] = e.typ(u.Elem())
	case *types.Struct:
		ent["kind"] = "struct"
		fs := []obj{}
		for i := 0; i < u.NumFields(); i++ {
			f := u.Field(i)
			fs = append(fs, obj{"name": f.Name(), "type": e.typ(f.Type()), "embedded": f.Embedded()})
		}
		ent["fields"] = fs
	case *types.Signature:
		ent["kind"] = "func"
		ent["params"] = e.tupleTypes(u.Params())
		ent["results"] = e.tupleTypes(u.Results())
	case *types.Tuple:
		ent["kind"] = "tuple"
		ent["elems"] = e.tupleTypes(u)
	default:
		ent["kind"] = "unsupported"
		ent["what"] = "type " + t.String()
	}
	return id
}

func (e *emitter) tupleTypes(t *types.Tuple) []int {
	out := []int{}
	for i := 0; i < t.Len(); i++ {
		out = append(out, e.typ(t.At(i).Type()))
	}
	return out
}

func (e *emitter) local(o types.Object) int {
	if id, ok := e.localIDs[o]; ok {
		return id
	}
	id := len(e.localIDs)
	e.localIDs[o] = id
	return id
}

func (e *emitter) varList(fl *ast.FieldList) []obj {
	out := []obj{}
	if fl == nil {
		return out
	}
	for _, f := range fl.List {
		if len(f.Names) == 0 {
			out = append(out, obj{"name": "_", "id": -1, "type": e.typ(e.info.Types[f.Type].Type)})
			continue
		}
		for _, n := range f.Names {
			o := e.info.Defs[n]
			if o == nil {
				out = append(out, obj{"name": n.Name, "id": -1, "type": e.typ(e.info.Types[f.Type].Type)})
				continue
			}
			out = append(out, obj{"name": n.Name, "id": e.local(o), "type": e.typ(o.Type())})
		}
	}
	return out
}

func (e *emitter) funcDecl(fd *ast.FuncDecl) obj {
	e.localIDs = map[types.Object]int{}
	out := obj{"name": funcDeclName(fd), "pos": e.pos(fd.Pos()),
		"file": filepath.Base(e.fset.Position(fd.Pos()).Filename)}
	if fd.Recv != nil {
		r := e.varList(fd.Recv)
		out["recv"] = r[0]
		_, ptr := e.info.Defs[fd.Name].(*types.Func).Type().(*types.Signature).Recv().Type().(*types.Pointer)
		out["recv_ptr"] = ptr
	}
	out["params"] = e.varList(fd.Type.Params)
	out["results"] = e.varList(fd.Type.Results)
	out["body"] = e.stmt(fd.Body)
	return out
}

// --- statements -------------------------------------------------------------------------------

func (e *emitter) unsupportedStmt(n ast.Node, what string) obj {
	return obj{"s": "unsupported", "what": what, "pos": e.pos(n.Pos())}
}

func (e *emitter) stmts(list []ast.Stmt) []obj {
	out := []obj{}
	for _, s := range list {
		out = append(out, e.stmt(s))
	}
	return out
}

func (e *emitter) optStmt(s ast.Stmt) any {
	if s == nil {
		return nil
	}
	return e.stmt(s)
}

func (e *emitter) optExpr(x ast.Expr) any {
	if x == nil {
		return nil
	}
	return e.expr(x)
}

func (e *emitter) stmt(s ast.Stmt) obj {
	pos := e.pos(s.Pos())
	switch s := s.(type) {
	case *ast.BlockStmt:
		return obj{"s": "block", "list": e.stmts(s.List), "pos": pos}
	case *ast.ExprStmt:
		return obj{"s": "expr", "x": e.expr(s.X), "pos": pos}
	case *ast.AssignStmt:
		var lhs, rhs []obj
		var define []bool
		for _, l := range s.Lhs {
			isNew := false
			if id, ok := l.(*ast.Ident); ok && s.Tok == token.DEFINE {
				if o := e.info.Defs[id]; o != nil {
					isNew = true
					lhs = append(lhs, obj{"k": "local", "id": e.local(o), "name": id.Name, "t": e.typ(o.Type()), "pos": e.pos(id.Pos())})
					define = append(define, isNew)
					continue
				}
			}
			if id, ok := l.(*ast.Ident); ok && id.Name == "_" {
				lhs = append(lhs, obj{"k": "blank", "pos": e.pos(id.Pos())})
			} else {
				lhs = append(lhs, e.expr(l))
			}
			define = append(define, isNew)
		}
		for _, r := range s.Rhs {
			rhs = append(rhs, e.expr(r))
		}
		return obj{"s": "assign", "op": s.Tok.String(), "lhs": lhs, "rhs": rhs, "define": define, "pos": pos}
	case *ast.IncDecStmt:
		return obj{"s": "incdec", "op": s.Tok.String(), "x": e.expr(s.X), "pos": pos}
	case *ast.DeclStmt:
		gd, ok := s.Decl.(*ast.GenDecl)
		if !ok {
			return e.unsupportedStmt(s, "declaration")
		}
		if gd.Tok == token.CONST || gd.Tok == token.TYPE {
			return obj{"s": "block", "list": []obj{}, "pos": pos} // folded at every use
		}
		var list []obj
		for _, sp := range gd.Specs {
			vs := sp.(*ast.ValueSpec)
			var vars []obj
			for _, n := range vs.Names {
				o := e.info.Defs[n]
				if o == nil {
					vars = append(vars, obj{"k": "blank"})
					continue
				}
				vars = append(vars, obj{"k": "local", "id": e.local(o), "name": n.Name, "t": e.typ(o.Type()), "pos": e.pos(n.Pos())})
			}
			vals := []obj{}
			for _, v := range vs.Values {
				vals = append(vals, e.expr(v))
			}
			list = append(list, obj{"s": "var", "vars": vars, "values": vals, "pos": e.pos(vs.Pos())})
		}
		return obj{"s": "block", "list": list, "pos": pos, "scope": false}
	case *ast.IfStmt:
		return obj{"s": "if", "init": e.optStmt(s.Init), "cond": e.expr(s.Cond), "then": e.stmt(s.Body),
			"else": e.optStmt(s.Else), "pos": pos}
	case *ast.ForStmt:
		var cond any
		if s.Cond != nil {
			cond = e.expr(s.Cond)
		}
		return obj{"s": "for", "init": e.optStmt(s.Init), "cond": cond, "post": e.optStmt(s.Post),
			"body": e.stmt(s.Body), "pos": pos}
	case *ast.RangeStmt:
		xt := e.info.Types[s.X].Type
		out := obj{"s": "range", "x": e.expr(s.X), "body": e.stmt(s.Body), "pos": pos,
			"define": s.Tok == token.DEFINE, "xt": e.typ(xt)}
		for _, kv := range []struct {
			k string
			x ast.Expr
		}{{"key", s.Key}, {"value", s.Value}} {
			if kv.x == nil {
				out[kv.k] = nil
				continue
			}
			id, isID := kv.x.(*ast.Ident)
			switch {
			case isID && id.Name == "_":
				out[kv.k] = nil
			case isID && s.Tok == token.DEFINE:
				o := e.info.Defs[id]
				out[kv.k] = obj{"k": "local", "id": e.local(o), "name": id.Name, "t": e.typ(o.Type()), "pos": e.pos(id.Pos())}
			default:
				out[kv.k] = e.expr(kv.x)
			}
		}
		return out
	case *ast.SwitchStmt:
		var cases []obj
		for _, c := range s.Body.List {
			cc := c.(*ast.CaseClause)
			var list any
			if cc.List != nil {
				var l []obj
				for _, x := range cc.List {
					l = append(l, e.expr(x))
				}
				list = l
			}
			ft := false
			if n := len(cc.Body); n > 0 {
				if b, ok := cc.Body[n-1].(*ast.BranchStmt); ok && b.Tok == token.FALLTHROUGH {
					ft = true
				}
			}
			cases = append(cases, obj{"list": list, "body": e.stmts(cc.Body), "fallthrough": ft, "pos": e.pos(cc.Pos())})
		}
		return obj{"s": "switch", "init": e.optStmt(s.Init), "tag": e.optExpr(s.Tag), "cases": cases, "pos": pos}
	case *ast.ReturnStmt:
		rs := []obj{}
		for _, r := range s.Results {
			rs = append(rs, e.expr(r))
		}
		return obj{"s": "return", "results": rs, "pos": pos}
	case *ast.BranchStmt:
		out := obj{"s": "branch", "tok": s.Tok.String(), "pos": pos}
		if s.Label != nil {
			out["label"] = s.Label.Name
		}
		if s.Tok == token.GOTO {
			return e.unsupportedStmt(s, "goto")
		}
		return out
	case *ast.LabeledStmt:
		return obj{"s": "labeled", "label": s.Label.Name, "stmt": e.stmt(s.Stmt), "pos": pos}
	case *ast.EmptyStmt:
		return obj{"s": "block", "list": []obj{}, "pos": pos}
	case *ast.GoStmt:
		return e.unsupportedStmt(s, "go statement")
	case *ast.DeferStmt:
		return e.unsupportedStmt(s, "defer")
	case *ast.SelectStmt:
		return e.unsupportedStmt(s, "select")
	case *ast.SendStmt:
		return e.unsupportedStmt(s, "channel send")
	case *ast.TypeSwitchStmt:
		return e.unsupportedStmt(s, "type switch")
	}
	return e.unsupportedStmt(s, fmt.Sprintf("statement %T", s))
}

// --- expressions ------------------------------------------------------------------------------

func (e *emitter) unsupported(n ast.Node, what string) obj {
	return obj{"k": "unsupported", "what": what, "pos": e.pos(n.Pos())}
}

func constJSON(v constant.Value) any {
	switch v.Kind() {
	case constant.Int:
		return v.ExactString()
	case constant.Bool:
		return constant.BoolVal(v)
	case constant.String:
		return constant.StringVal(v)
	}
	return nil
}

func (e *emitter) expr(x ast.Expr) obj {
	pos := e.pos(x.Pos())
	tv := e.info.Types[x]
	if tv.Value != nil {
		if v := constJSON(tv.Value); v != nil {
			return obj{"k": "const", "v": v, "t": e.typ(tv.Type), "pos": pos}
		}
		return e.unsupported(x, "constant of kind "+tv.Value.Kind().String())
	}
	switch x := x.(type) {
	case *ast.ParenExpr:
		return e.expr(x.X)
	case *ast.Ident:
		o := e.info.Uses[x]
		switch o := o.(type) {
		case *types.Var:
			if o.Parent() == e.pkg.Scope() {
				e.global(o)
				return obj{"k": "global", "name": o.Name(), "t": e.typ(o.Type()), "pos": pos}
			}
			return obj{"k": "local", "id": e.local(o), "name": x.Name, "t": e.typ(o.Type()), "pos": pos}
		case *types.Func:
			return obj{"k": "func", "name": e.funcName(o), "t": e.typ(o.Type()), "pos": pos}
		case *types.Nil:
			return obj{"k": "nil", "t": e.typ(tv.Type), "pos": pos}
		}
		return e.unsupported(x, "identifier "+x.Name)
	case *ast.BinaryExpr:
		return obj{"k": "binary", "op": x.Op.String(), "x": e.expr(x.X), "y": e.expr(x.Y), "t": e.typ(tv.Type), "pos": pos}
	case *ast.UnaryExpr:
		if x.Op == token.AND {
			return obj{"k": "addr", "x": e.expr(x.X), "t": e.typ(tv.Type), "pos": pos}
		}
		if x.Op == token.ARROW {
			return e.unsupported(x, "channel receive")
		}
		return obj{"k": "unary", "op": x.Op.String(), "x": e.expr(x.X), "t": e.typ(tv.Type), "pos": pos}
	case *ast.StarExpr:
		return obj{"k": "deref", "x": e.expr(x.X), "t": e.typ(tv.Type), "pos": pos}
	case *ast.IndexExpr:
		if tv.IsType() {
			return e.unsupported(x, "generic instantiation")
		}
		return obj{"k": "index", "x": e.expr(x.X), "i": e.expr(x.Index), "t": e.typ(tv.Type), "pos": pos}
	case *ast.SliceExpr:
		if x.Slice3 {
			return e.unsupported(x, "3-index slice")
		}
		return obj{"k": "slice", "x": e.expr(x.X), "lo": e.optExpr(x.Low), "hi": e.optExpr(x.High),
			"t": e.typ(tv.Type), "pos": pos}
	case *ast.SelectorExpr:
		if sel, ok := e.info.Selections[x]; ok {
			switch sel.Kind() {
			case types.FieldVal:
				// Walk the embedding path, naming each field.
				var path []string
				t := sel.Recv()
				for _, i := range sel.Index() {
					if p, ok := t.Underlying().(*types.Pointer); ok {
						t = p.Elem()
					}
					f := t.Underlying().(*types.Struct).Field(i)
					path = append(path, f.Name())
					t = f.Type()
				}
				return obj{"k": "field", "x": e.expr(x.X), "path": path, "t": e.typ(tv.Type), "pos": pos}
			case types.MethodVal:
				return obj{"k": "method", "x": e.expr(x.X), "name": e.funcName(sel.Obj().(*types.Func)),
					"t": e.typ(tv.Type), "pos": pos}
			}
			return e.unsupported(x, "method expression")
		}
		// A qualified identifier: pkg.Name.
		switch o := e.info.Uses[x.Sel].(type) {
		case *types.Func:
			return obj{"k": "func", "name": e.funcName(o), "t": e.typ(o.Type()), "pos": pos}
		case *types.Var:
			return e.unsupported(x, "variable of another package "+o.Pkg().Path()+"."+o.Name())
		}
		return e.unsupported(x, "selector "+x.Sel.Name)
	case *ast.CallExpr:
		return e.call(x, tv)
	case *ast.CompositeLit:
		t := tv.Type
		out := obj{"k": "composite", "t": e.typ(t), "pos": pos}
		switch u := t.Underlying().(type) {
		case *types.Struct:
			fields := []obj{}
			for i, el := range x.Elts {
				if kv, ok := el.(*ast.KeyValueExpr); ok {
					fields = append(fields, obj{"name": kv.Key.(*ast.Ident).Name, "v": e.expr(kv.Value)})
				} else {
					fields = append(fields, obj{"name": u.Field(i).Name(), "v": e.expr(el)})
				}
			}
			out["fields"] = fields
		case *types.Array:
			elts := []obj{}
			for _, el := range x.Elts {
				if _, ok := el.(*ast.KeyValueExpr); ok {
					return e.unsupported(x, "keyed array literal")
				}
				elts = append(elts, e.expr(el))
			}
			out["elts"] = elts
		default:
			return e.unsupported(x, "composite literal of "+t.String())
		}
		return out
	case *ast.FuncLit:
		sig := tv.Type.(*types.Signature)
		_ = sig
		return obj{"k": "funclit", "params": e.varList(x.Type.Params), "results": e.varList(x.Type.Results),
			"body": e.stmt(x.Body), "t": e.typ(tv.Type), "pos": pos}
	case *ast.TypeAssertExpr:
		return e.unsupported(x, "type assertion")
	}
	return e.unsupported(x, fmt.Sprintf("expression %T", x))
}

func (e *emitter) funcName(f *types.Func) string {
	sig := f.Type().(*types.Signature)
	prefix := ""
	if f.Pkg() != nil && f.Pkg() != e.pkg {
		prefix = f.Pkg().Path() + "."
	}
	if r := sig.Recv(); r != nil {
		t := r.Type()
		if p, ok := t.(*types.Pointer); ok {
			t = p.Elem()
		}
		if n, ok := t.(*types.Named); ok {
			return prefix + n.Obj().Name() + "." + f.Name()
		}
		return prefix + "?." + f.Name()
	}
	return prefix + f.Name()
}

func (e *emitter) call(x *ast.CallExpr, tv types.TypeAndValue) obj {
	pos := e.pos(x.Pos())
	ft := e.info.Types[x.Fun]
	args := []obj{}
	for _, a := range x.Args {
		args = append(args, e.expr(a))
	}
	if x.Ellipsis.IsValid() {
		return e.unsupported(x, "variadic call with ...")
	}
	rt := 0
	if tv.Type != nil {
		rt = e.typ(tv.Type)
	}
	if ft.IsType() {
		if len(args) != 1 {
			return e.unsupported(x, "conversion")
		}
		return obj{"k": "conv", "x": args[0], "t": rt, "pos": pos}
	}
	if ft.IsBuiltin() {
		name := ""
		switch f := unparen(x.Fun).(type) {
		case *ast.Ident:
			name = f.Name
		case *ast.SelectorExpr: // unsafe.Sizeof and friends are constants, folded above
			name = f.Sel.Name
		}
		return obj{"k": "builtin", "name": name, "args": args, "t": rt, "pos": pos}
	}
	out := obj{"k": "call", "args": args, "t": rt, "pos": pos}
	fun := unparen(x.Fun)
	switch f := fun.(type) {
	case *ast.Ident:
		if fo, ok := e.info.Uses[f].(*types.Func); ok {
			name := e.funcName(fo)
			out["callee"] = name
			e.callees = append(e.callees, name)
			return out
		}
	case *ast.SelectorExpr:
		if sel, ok := e.info.Selections[f]; ok && sel.Kind() == types.MethodVal {
			fo := sel.Obj().(*types.Func)
			name := e.funcName(fo)
			out["callee"] = name
			_, recvPtr := fo.Type().(*types.Signature).Recv().Type().(*types.Pointer)
			out["recv"] = e.expr(f.X)
			out["recv_ptr"] = recvPtr
			// Methods promoted through embedded fields: the path to the receiver.
			if idx := sel.Index(); len(idx) > 1 {
				var path []string
				t := sel.Recv()
				for _, i := range idx[:len(idx)-1] {
					if p, ok := t.Underlying().(*types.Pointer); ok {
						t = p.Elem()
					}
					fl := t.Underlying().(*types.Struct).Field(i)
					path = append(path, fl.Name())
					t = fl.Type()
				}
				out["recv_path"] = path
			}
			e.callees = append(e.callees, name)
			return out
		}
		if _, ok := e.info.Selections[f]; !ok {
			if fo, ok := e.info.Uses[f.Sel].(*types.Func); ok {
				name := e.funcName(fo)
				out["callee"] = name
				e.callees = append(e.callees, name)
				return out
			}
		}
	}
	out["fun"] = e.expr(x.Fun) // a closure or function value
	return out
}

// global records a package variable the trees read: its type, its initializer folded when every
// part of it is constant, and whether any statement of the package writes it (assignment,
// increment, or taking its address).
func (e *emitter) global(o *types.Var) {
	if _, ok := e.globals[o.Name()]; ok {
		return
	}
	g := obj{"type": e.typ(o.Type())}
	e.globals[o.Name()] = g
	if e.written == nil {
		e.written = e.findWrites()
	}
	g["written"] = e.written[o]
	varSpecs(e.files, func(_ *ast.File, vs *ast.ValueSpec) {
		for i, n := range vs.Names {
			if e.info.Defs[n] != o {
				continue
			}
			g["pos"] = e.pos(n.Pos())
			if i < len(vs.Values) {
				if v, ok := e.constValue(vs.Values[i]); ok {
					g["init"] = v
				}
			} else if len(vs.Values) == 0 {
				g["init"] = nil // the zero value; reported as not constant
			}
		}
	})
}

// unparen returns x without its enclosing parentheses (ast.Unparen, which Go 1.21 lacks).
func unparen(x ast.Expr) ast.Expr {
	for {
		p, ok := x.(*ast.ParenExpr)
		if !ok {
			return x
		}
		x = p.X
	}
}

// varSpecs calls fn with every package-level `var` spec of files, in order.
func varSpecs(files []*ast.File, fn func(*ast.File, *ast.ValueSpec)) {
	for _, f := range files {
		for _, d := range f.Decls {
			if gd, ok := d.(*ast.GenDecl); ok && gd.Tok == token.VAR {
				for _, sp := range gd.Specs {
					fn(f, sp.(*ast.ValueSpec))
				}
			}
		}
	}
}

// constValue folds an initializer made only of constants, array literals and struct literals.
func (e *emitter) constValue(x ast.Expr) (any, bool) {
	if tv := e.info.Types[x]; tv.Value != nil {
		v := constJSON(tv.Value)
		return v, v != nil
	}
	switch x := x.(type) {
	case *ast.ParenExpr:
		return e.constValue(x.X)
	case *ast.CompositeLit:
		t := e.info.Types[x].Type
		switch u := t.Underlying().(type) {
		case *types.Array:
			if int64(len(x.Elts)) != u.Len() {
				return nil, false
			}
			var out []any
			for _, el := range x.Elts {
				if _, ok := el.(*ast.KeyValueExpr); ok {
					return nil, false
				}
				v, ok := e.constValue(el)
				if !ok {
					return nil, false
				}
				out = append(out, v)
			}
			return out, true
		case *types.Struct:
			out := obj{}
			for i, el := range x.Elts {
				name := ""
				if kv, ok := el.(*ast.KeyValueExpr); ok {
					name = kv.Key.(*ast.Ident).Name
					el = kv.Value
				} else {
					name = u.Field(i).Name()
				}
				v, ok := e.constValue(el)
				if !ok {
					return nil, false
				}
				out[name] = v
			}
			if len(out) != u.NumFields() {
				return nil, false
			}
			return out, true
		}
	}
	return nil, false
}

func rootIdent(x ast.Expr) *ast.Ident {
	for {
		switch y := x.(type) {
		case *ast.Ident:
			return y
		case *ast.ParenExpr:
			x = y.X
		case *ast.SelectorExpr:
			x = y.X
		case *ast.IndexExpr:
			x = y.X
		case *ast.SliceExpr:
			x = y.X
		case *ast.StarExpr:
			x = y.X
		default:
			return nil
		}
	}
}

func (e *emitter) findWrites() map[types.Object]bool {
	w := map[types.Object]bool{}
	mark := func(x ast.Expr) {
		if id := rootIdent(x); id != nil {
			if o := e.info.Uses[id]; o != nil {
				w[o] = true
			}
		}
	}
	for _, f := range e.files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.AssignStmt:
				for _, l := range n.Lhs {
					mark(l)
				}
			case *ast.IncDecStmt:
				mark(n.X)
			case *ast.UnaryExpr:
				if n.Op == token.AND {
					mark(n.X)
				}
			case *ast.RangeStmt:
				if n.Key != nil {
					mark(n.Key)
				}
				if n.Value != nil {
					mark(n.Value)
				}
			case *ast.CallExpr: // a method with a pointer receiver called on the variable
				if s, ok := n.Fun.(*ast.SelectorExpr); ok {
					if sel, ok := e.info.Selections[s]; ok && sel.Kind() == types.MethodVal {
						if _, ptr := sel.Obj().Type().(*types.Signature).Recv().Type().(*types.Pointer); ptr {
							mark(s.X)
						}
					}
				}
			}
			return true
		})
	}
	return w
}
