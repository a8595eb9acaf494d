// Copyright: palloc authors. Test-only overlay, compiled into the runtime's own test binary.

// TestPallocServer is palloc's differential helper: with PALLOC_SERVER=1 it reads one JSON
// request per line on stdin and writes one JSON response per line on stdout, driving real
// runtime page allocators through export_test.go and export_palloc_test.go. Without
// PALLOC_SERVER=1 it skips, so a plain `go test runtime` is unaffected.
//
// The protocol is documented in palloc's goref/README.md. Every top-level name here starts
// with "pallocSrv" so it cannot collide with the runtime's own tests.

package runtime_test

import (
	pallocSrvBufio "bufio"
	pallocSrvSHA256 "crypto/sha256"
	pallocSrvBinary "encoding/binary"
	pallocSrvHexEnc "encoding/hex"
	"encoding/json"
	pallocSrvErrors "errors"
	pallocSrvFlag "flag"
	"fmt"
	pallocSrvIO "io"
	pallocSrvBig "math/big"
	"os"
	"runtime"
	. "runtime"
	pallocSrvSort "sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

const pallocSrvProtocol = 1

// pallocSrvU64 is an unsigned integer that arrives as a JSON number, a "0x..." hex string
// or a decimal string (JSON numbers lose precision above 2^53).
type pallocSrvU64 uint64

func (u *pallocSrvU64) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(s) > 0 && s[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	v, err := pallocSrvParseUint(s)
	*u = pallocSrvU64(v)
	return err
}

func pallocSrvParseUint(s string) (uint64, error) {
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		return strconv.ParseUint(s[2:], 16, 64)
	}
	return strconv.ParseUint(s, 10, 64)
}

func pallocSrvHex(x uint64) string { return "0x" + strconv.FormatUint(x, 16) }

func pallocSrvHexs(xs []uint64) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = pallocSrvHex(x)
	}
	return out
}

func pallocSrvRanges(rs [][2]uintptr) [][2]string {
	out := make([][2]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, [2]string{pallocSrvHex(uint64(r[0])), pallocSrvHex(uint64(r[1]))})
	}
	return out
}

// pallocSrvWords is the number of 64-bit words in one chunk bitmap.
const pallocSrvWords = PallocChunkPages / 64

// pallocSrvParseBits reads a chunk bitmap: one integer (hex or decimal string, or a JSON
// number) whose bit i is page i, or a list of pallocSrvWords words, word 0 first.
func pallocSrvParseBits(raw json.RawMessage) ([]uint64, error) {
	words := make([]uint64, pallocSrvWords)
	if len(raw) == 0 || string(raw) == "null" {
		return words, nil
	}
	if raw[0] == '[' {
		var ws []pallocSrvU64
		if err := json.Unmarshal(raw, &ws); err != nil {
			return nil, err
		}
		if len(ws) != pallocSrvWords {
			return nil, fmt.Errorf("a bitmap list needs %d words, got %d", pallocSrvWords, len(ws))
		}
		for i, w := range ws {
			words[i] = uint64(w)
		}
		return words, nil
	}
	s := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
	}
	x, ok := new(pallocSrvBig.Int), false
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		_, ok = x.SetString(s[2:], 16)
	} else {
		_, ok = x.SetString(s, 10)
	}
	if !ok || x.Sign() < 0 || x.BitLen() > 64*pallocSrvWords {
		return nil, fmt.Errorf("bad bitmap %q: need a non-negative integer below 2^%d", s, 64*pallocSrvWords)
	}
	mask := new(pallocSrvBig.Int).SetUint64(^uint64(0))
	for i := range words {
		words[i] = new(pallocSrvBig.Int).And(new(pallocSrvBig.Int).Rsh(x, uint(64*i)), mask).Uint64()
	}
	return words, nil
}

// pallocSrvBitsHex writes a chunk bitmap as one hex integer whose bit i is page i.
func pallocSrvBitsHex(words []uint64) string {
	var sb strings.Builder
	started := false
	for i := len(words) - 1; i >= 0; i-- {
		if !started {
			if words[i] == 0 && i > 0 {
				continue
			}
			sb.WriteString(strconv.FormatUint(words[i], 16))
			started = true
			continue
		}
		s := strconv.FormatUint(words[i], 16)
		sb.WriteString(strings.Repeat("0", 16-len(s)))
		sb.WriteString(s)
	}
	return "0x" + sb.String()
}

// pallocSrvOp is one operation of a request; which fields matter depends on Op.
type pallocSrvOp struct {
	Op        string          `json:"op"`
	PA        *int            `json:"pa"`
	Slot      int             `json:"slot"`
	AR        *int            `json:"ar"`
	NPages    pallocSrvU64    `json:"npages"`
	Base      pallocSrvU64    `json:"base"`
	Size      pallocSrvU64    `json:"size"`
	Limit     pallocSrvU64    `json:"limit"`
	NBytes    pallocSrvU64    `json:"nbytes"`
	Addr      pallocSrvU64    `json:"addr"`
	Force     bool            `json:"force"`
	Contig    bool            `json:"contig"`
	Alloc     json.RawMessage `json:"alloc"`
	Empty     bool            `json:"empty"`
	Chunks    json.RawMessage `json:"chunks"`
	Scav      json.RawMessage `json:"scav"`
	Summaries json.RawMessage `json:"summaries"`
	Bits      json.RawMessage `json:"bits"`
	Cache     pallocSrvU64    `json:"cache"`
	I         pallocSrvU64    `json:"i"`
	N         pallocSrvU64    `json:"n"`
	SearchIdx pallocSrvU64    `json:"search_idx"`
	Minimum   *pallocSrvU64   `json:"minimum"`
	Min       pallocSrvU64    `json:"min"`
	Start     pallocSrvU64    `json:"start"`
	Max       pallocSrvU64    `json:"max"`
	End       pallocSrvU64    `json:"end"`
	C         pallocSrvU64    `json:"c"`
	X         pallocSrvU64    `json:"x"`
	M         pallocSrvU64    `json:"m"`
	Ms        int             `json:"ms"`
	Msg       string          `json:"msg"`
	Trace     json.RawMessage `json:"trace"`
	// Steps and Touch belong to "steps" (the digest lockstep): the operations to run, and for
	// each, the chunks whose state its digest covers.
	Steps []json.RawMessage `json:"steps"`
	Touch *[]pallocSrvU64   `json:"touch"`
	// Fn and Args belong to "tv_call" (translation validation): a runtime function by name and
	// its arguments flattened into words (PallocTVCall).
	Fn   string         `json:"fn"`
	Args []pallocSrvU64 `json:"args"`
}

type pallocSrvRequest struct {
	ID  json.RawMessage   `json:"id"`
	Ops []json.RawMessage `json:"ops"`
	// FlushEach (default true) flushes every result as soon as it is known, so a crash
	// loses nothing before it; false writes the response once, at the end of the batch.
	FlushEach *bool `json:"flush_each"`
}

// pallocSrvPA is one live allocator and its page-cache slots.
type pallocSrvPA struct {
	p      *PageAlloc
	caches map[int]*PageCache
}

type pallocSrv struct {
	pas    map[int]*pallocSrvPA
	nextPA int
	curPA  int
	ars    map[int]*AddrRanges
	nextAR int
}

type pallocSrvResult = map[string]any

var errPallocSrvBadOp = pallocSrvErrors.New("unknown op")

func TestPallocServer(t *testing.T) {
	if os.Getenv("PALLOC_SERVER") != "1" {
		t.Skip("palloc's helper: runs only with PALLOC_SERVER=1")
	}
	s := &pallocSrv{pas: map[int]*pallocSrvPA{}, ars: map[int]*AddrRanges{}}
	pallocSrvCoverStart()
	in := pallocSrvBufio.NewReaderSize(os.Stdin, 1<<20)
	out := pallocSrvBufio.NewWriterSize(os.Stdout, 1<<16)
	for {
		line, err := in.ReadBytes('\n')
		if len(strings.TrimSpace(string(line))) > 0 {
			s.serve(line, out)
		}
		if err == pallocSrvIO.EOF {
			break
		}
		if err != nil {
			t.Fatalf("palloc server: reading stdin: %v", err)
		}
	}
	out.Flush()
	for _, pa := range s.pas {
		FreePageAlloc(pa.p)
	}
	pallocSrvCover.finish()
}

// Coverage attribution (goref/coverage.py): in a helper built with -cover and run with
// PALLOC_COVER=1 and GOMAXPROCS=1, the counters each operation advances are added up apart, and
// at the end they are written apart (finish), so what palloc's operations ran is told from what
// the runtime's own heap ran between them (with one P and preemption off, nothing else runs while
// an operation does).
type pallocSrvCoverState struct{ live, snap, own []uint32 }

var pallocSrvCover *pallocSrvCoverState

func pallocSrvCoverStart() {
	if os.Getenv("PALLOC_COVER") != "1" {
		return
	}
	if live := PallocCoverCounters(); live != nil {
		pallocSrvCover = &pallocSrvCoverState{live, make([]uint32, len(live)), make([]uint32, len(live))}
	}
}

// pallocSrvRun runs f, the call of one allocator, bitmap or address-range function, counted as
// palloc's own in a coverage helper. Only the call: decoding its arguments and encoding its
// results allocate on the helper's own heap, whose page allocator runs the same code.
func pallocSrvRun(f func()) {
	c := pallocSrvCover
	if c == nil {
		f()
		return
	}
	PallocWithoutPreemption(func() {
		copy(c.snap, c.live)
		f()
		for i, v := range c.live {
			c.own[i] += v - c.snap[i]
		}
	})
}

// finish writes palloc's own counts beside the test binary's profile, in its -test.gocoverdir:
// palloc-cover.<pid>.txt, a line "palloc-cover 1", then one line per function that palloc's
// operations ran: its package and function ids, then its counters (goref/coverage.py maps them
// to lines through the profile's meta-data). The binary's own counters, written as it exits,
// stay whole: they count the runtime's own heap too.
func (c *pallocSrvCoverState) finish() {
	f := pallocSrvFlag.Lookup("test.gocoverdir")
	if c == nil || f == nil || f.Value.String() == "" {
		return
	}
	var b strings.Builder
	b.WriteString("palloc-cover 1\n")
	for i := 0; i < len(c.live); {
		n := int(c.live[i])
		if n == 0 {
			i++
			continue
		}
		own := c.own[i+3 : i+3+n]
		for _, v := range own {
			if v != 0 {
				b.WriteString(strconv.FormatUint(uint64(c.live[i+1]), 10) + " " + strconv.FormatUint(uint64(c.live[i+2]), 10))
				for _, v := range own {
					b.WriteString(" " + strconv.FormatUint(uint64(v), 10))
				}
				b.WriteString("\n")
				break
			}
		}
		i += 3 + n
	}
	name := f.Value.String() + "/palloc-cover." + strconv.Itoa(os.Getpid())
	if os.WriteFile(name+".tmp", []byte(b.String()), 0o644) == nil {
		os.Rename(name+".tmp", name+".txt")
	}
}

// serve answers one request line. Each result is flushed as soon as it is known, so the
// results before an operation that kills the process still reach the driver.
func (s *pallocSrv) serve(line []byte, out *pallocSrvBufio.Writer) {
	var req pallocSrvRequest
	if err := json.Unmarshal(line, &req); err != nil {
		b, _ := json.Marshal(map[string]any{"id": nil, "error": "bad request: " + err.Error()})
		out.Write(b)
		out.WriteString("\n")
		out.Flush()
		return
	}
	id := req.ID
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	out.WriteString(`{"id":`)
	out.Write(id)
	out.WriteString(`,"results":[`)
	for k, raw := range req.Ops {
		if k > 0 {
			out.WriteString(",")
		}
		b, err := json.Marshal(s.do(raw))
		if err != nil {
			b, _ = json.Marshal(pallocSrvResult{"kind": "error", "msg": "encoding result: " + err.Error()})
		}
		out.Write(b)
		if req.FlushEach == nil || *req.FlushEach {
			out.Flush()
		}
	}
	out.WriteString("]}\n")
	out.Flush()
}

// do runs one operation; a recovered Go panic becomes kind "go-panic". Panics inside
// systemstack (where the allocator's lock is held) are fatal in Go and never get here.
func (s *pallocSrv) do(raw json.RawMessage) (res pallocSrvResult) {
	defer func() {
		if r := recover(); r != nil {
			res = pallocSrvResult{"kind": "go-panic", "msg": fmt.Sprint(r)}
		}
	}()
	var op pallocSrvOp
	if err := json.Unmarshal(raw, &op); err != nil {
		return pallocSrvResult{"kind": "error", "msg": "bad op: " + err.Error()}
	}
	return s.doOp(&op)
}

// doOp runs one decoded operation, as do does.
func (s *pallocSrv) doOp(op *pallocSrvOp) (res pallocSrvResult) {
	defer func() {
		if r := recover(); r != nil {
			res = pallocSrvResult{"kind": "go-panic", "msg": fmt.Sprint(r)}
		}
	}()
	r, err := s.dispatch(op)
	if err != nil {
		return pallocSrvResult{"kind": "error", "msg": op.Op + ": " + err.Error()}
	}
	if r == nil {
		r = pallocSrvResult{}
	}
	r["kind"] = "ok"
	return r
}

func (s *pallocSrv) pa(op *pallocSrvOp) (*pallocSrvPA, error) {
	id := s.curPA
	if op.PA != nil {
		id = *op.PA
	}
	pa, ok := s.pas[id]
	if !ok {
		return nil, fmt.Errorf("no page allocator %d (make one with \"new\")", id)
	}
	return pa, nil
}

// ar looks up an AddrRanges as pa looks up a page allocator, on purpose: Go's maps of two types.
func (s *pallocSrv) ar(op *pallocSrvOp) (*AddrRanges, error) {
	id := s.nextAR
	if op.AR != nil {
		id = *op.AR
	}
	a, ok := s.ars[id]
	if !ok {
		return nil, fmt.Errorf("no addr ranges %d (make one with \"addr_ranges_new\")", id)
	}
	return a, nil
}

func pallocSrvCacheResult(c *PageCache) pallocSrvResult {
	return pallocSrvResult{
		"base":  pallocSrvHex(uint64(c.Base())),
		"cache": pallocSrvHex(c.Cache()),
		"scav":  pallocSrvHex(c.Scav()),
	}
}

func (s *pallocSrv) dispatch(op *pallocSrvOp) (pallocSrvResult, error) {
	h := func(x uintptr) string { return pallocSrvHex(uint64(x)) }
	switch op.Op {
	case "ping":
		return pallocSrvResult{"protocol": pallocSrvProtocol, "pid": os.Getpid(), "version": runtime.Version(),
			"goos": runtime.GOOS, "goarch": runtime.GOARCH}, nil
	case "constants":
		return pallocSrvConstants(), nil
	case "sleep": // test-only: lets the driver's watchdog be tested
		time.Sleep(time.Duration(op.Ms) * time.Millisecond)
		return nil, nil
	case "panic": // test-only: a recovered Go panic
		panic("palloc server: panic op: " + op.Msg)

	// --- allocators -------------------------------------------------------------------
	case "new":
		var p *PageAlloc
		if op.Empty {
			p = PallocNewPageAllocObject() // on the helper's own heap: not counted
			pallocSrvRun(func() { p.PallocInit() })
		} else {
			chunks, err := pallocSrvChunkMap(op.Chunks)
			if err != nil {
				return nil, fmt.Errorf("chunks: %v", err)
			}
			var scav map[ChunkIdx][]BitRange
			if len(op.Scav) > 0 && string(op.Scav) != "null" {
				if scav, err = pallocSrvChunkMap(op.Scav); err != nil {
					return nil, fmt.Errorf("scav: %v", err)
				}
			}
			// Counted whole: the pageAlloc it allocates first (one large object of the helper's
			// own heap) runs pageAlloc.alloc's common path too (goref/coverage.py).
			pallocSrvRun(func() { p = NewPageAlloc(chunks, scav) })
		}
		s.nextPA++
		s.pas[s.nextPA] = &pallocSrvPA{p: p, caches: map[int]*PageCache{}}
		s.curPA = s.nextPA
		return pallocSrvResult{"pa": s.nextPA}, nil
	case "drop":
		pa, err := s.pa(op)
		if err != nil {
			return nil, err
		}
		for id, v := range s.pas {
			if v == pa {
				delete(s.pas, id)
			}
		}
		FreePageAlloc(pa.p)
		return nil, nil
	case "steps":
		return s.steps(op)
	case "drop_all":
		for id, pa := range s.pas {
			FreePageAlloc(pa.p)
			delete(s.pas, id)
		}
		return nil, nil
	}

	// Pure functions and addr ranges need no allocator.
	if r, err := s.dispatchPure(op); err != errPallocSrvBadOp {
		return r, err
	}

	if !pallocSrvPAOps[op.Op] {
		return nil, fmt.Errorf("unknown op %q", op.Op)
	}
	pa, err := s.pa(op)
	if err != nil {
		return nil, err
	}
	p := pa.p
	switch op.Op {
	case "grow":
		pallocSrvRun(func() { p.PallocGrow(uintptr(op.Base), uintptr(op.Size)) })
		return nil, nil
	case "alloc":
		var addr, scav uintptr
		pallocSrvRun(func() { addr, scav = p.Alloc(uintptr(op.NPages)) })
		return pallocSrvResult{"addr": h(addr), "scav": h(scav)}, nil
	case "free":
		pallocSrvRun(func() { p.Free(uintptr(op.Base), uintptr(op.NPages)) })
		return nil, nil
	case "find":
		var addr, hint uintptr
		pallocSrvRun(func() { addr, hint = p.PallocFind(uintptr(op.NPages)) })
		return pallocSrvResult{"addr": h(addr), "search_addr": h(hint)}, nil
	case "alloc_range":
		var scav uintptr
		pallocSrvRun(func() { scav = p.PallocAllocRange(uintptr(op.Base), uintptr(op.NPages)) })
		return pallocSrvResult{"scav": h(scav)}, nil
	case "update":
		var alloc bool
		if err := json.Unmarshal(op.Alloc, &alloc); err != nil {
			return nil, fmt.Errorf("alloc must be a bool")
		}
		pallocSrvRun(func() { p.PallocUpdate(uintptr(op.Base), uintptr(op.NPages), op.Contig, alloc) })
		return nil, nil
	case "scavenge":
		var released uintptr
		pallocSrvRun(func() { released = p.PallocScavenge(uintptr(op.NBytes), op.Force) })
		return pallocSrvResult{"released": h(released)}, nil
	case "next_gen":
		pallocSrvRun(func() { p.PallocNextGen() })
		return nil, nil
	case "alloc_to_cache":
		if c, ok := pa.caches[op.Slot]; ok && !c.Empty() {
			return nil, fmt.Errorf("cache slot %d is not empty", op.Slot)
		}
		var c PageCache
		pallocSrvRun(func() { c = p.AllocToCache() })
		pa.caches[op.Slot] = &c
		return pallocSrvCacheResult(&c), nil
	case "cache_new":
		c := NewPageCache(uintptr(op.Base), uint64(op.Cache), pallocSrvScavWord(op))
		pa.caches[op.Slot] = &c
		return pallocSrvCacheResult(&c), nil
	case "cache_alloc":
		c, ok := pa.caches[op.Slot]
		if !ok {
			return nil, fmt.Errorf("cache slot %d was never filled", op.Slot)
		}
		var addr, scav uintptr
		pallocSrvRun(func() { addr, scav = c.Alloc(uintptr(op.NPages)) })
		r := pallocSrvCacheResult(c)
		r["addr"], r["scav_bytes"] = h(addr), h(scav)
		return r, nil
	case "cache_flush":
		c, ok := pa.caches[op.Slot]
		if !ok {
			return nil, fmt.Errorf("cache slot %d was never filled", op.Slot)
		}
		pallocSrvRun(func() { c.Flush(p) })
		return pallocSrvCacheResult(c), nil
	case "dump":
		return s.dump(pa, op)
	case "bench":
		return pallocSrvBench(p, op)
	}
	return nil, fmt.Errorf("unknown op %q", op.Op)
}

// pallocSrvPAOps are the operations on a page allocator ("pa").
var pallocSrvPAOps = map[string]bool{
	"grow": true, "alloc": true, "free": true, "find": true, "alloc_range": true, "update": true,
	"scavenge": true, "next_gen": true, "alloc_to_cache": true, "cache_new": true, "cache_alloc": true,
	"cache_flush": true, "dump": true, "bench": true,
}

// pallocSrvScavWord reads "scav" as one 64-bit word (cache_new).
func pallocSrvScavWord(op *pallocSrvOp) uint64 {
	var u pallocSrvU64
	if len(op.Scav) > 0 {
		_ = json.Unmarshal(op.Scav, &u)
	}
	return uint64(u)
}

// pallocSrvChunkMap reads {"<chunk index>": [[i, n], ...], ...} (keys hex or decimal).
func pallocSrvChunkMap(raw json.RawMessage) (map[ChunkIdx][]BitRange, error) {
	var m map[string][][2]pallocSrvU64
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, err
		}
	}
	out := make(map[ChunkIdx][]BitRange, len(m))
	for k, rs := range m {
		ci, err := pallocSrvParseUint(k)
		if err != nil {
			return nil, fmt.Errorf("bad chunk index %q", k)
		}
		brs := []BitRange{}
		for _, r := range rs {
			brs = append(brs, BitRange{uint(r[0]), uint(r[1])})
		}
		out[ChunkIdx(ci)] = brs
	}
	return out, nil
}

func (s *pallocSrv) dispatchPure(op *pallocSrvOp) (pallocSrvResult, error) {
	h := func(x uintptr) string { return pallocSrvHex(uint64(x)) }
	u := func(x uint) string { return pallocSrvHex(uint64(x)) }
	bits := func() (*PallocBits, error) {
		w, err := pallocSrvParseBits(op.Bits)
		if err != nil {
			return nil, err
		}
		var b PallocBits
		copy(b[:], w)
		return &b, nil
	}
	switch op.Op {
	case "tv_call":
		a := make([]uint64, len(op.Args))
		for i, x := range op.Args {
			a[i] = uint64(x)
		}
		out, ok := PallocTVCall(op.Fn, a)
		if !ok {
			return nil, fmt.Errorf("unknown function %q or wrong number of argument words (%d)", op.Fn, len(a))
		}
		return pallocSrvResult{"out": pallocSrvHexs(out)}, nil
	case "bits_find":
		b, err := bits()
		if err != nil {
			return nil, err
		}
		var i, si uint
		pallocSrvRun(func() { i, si = b.Find(uintptr(op.NPages), uint(op.SearchIdx)) })
		return pallocSrvResult{"index": u(i), "search_idx": u(si)}, nil
	case "bits_summarize", "bits_summarize_slow":
		b, err := bits()
		if err != nil {
			return nil, err
		}
		var sum PallocSum
		pallocSrvRun(func() {
			if op.Op == "bits_summarize_slow" {
				sum = SummarizeSlow(b)
			} else {
				sum = b.Summarize()
			}
		})
		return pallocSrvResult{"sum": pallocSrvHex(uint64(sum)), "start": u(sum.Start()), "max": u(sum.Max()), "end": u(sum.End())}, nil
	case "bits_alloc_range", "bits_free":
		b, err := bits()
		if err != nil {
			return nil, err
		}
		pallocSrvRun(func() {
			if op.Op == "bits_alloc_range" {
				b.AllocRange(uint(op.I), uint(op.N))
			} else {
				b.Free(uint(op.I), uint(op.N))
			}
		})
		return pallocSrvResult{"bits": pallocSrvBitsHex(b[:])}, nil
	case "bits_popcnt_range":
		b, err := bits()
		if err != nil {
			return nil, err
		}
		var n uint
		pallocSrvRun(func() { n = b.PopcntRange(uint(op.I), uint(op.N)) })
		return pallocSrvResult{"n": u(n)}, nil
	case "find_bit_range64":
		var i uint
		pallocSrvRun(func() { i = FindBitRange64(uint64(op.C), uint(op.N)) })
		return pallocSrvResult{"index": u(i)}, nil
	case "fill_aligned":
		var x uint64
		pallocSrvRun(func() { x = FillAligned(uint64(op.X), uint(op.M)) })
		return pallocSrvResult{"x": pallocSrvHex(x)}, nil
	case "pack_palloc_sum":
		sum := PackPallocSum(uint(op.Start), uint(op.Max), uint(op.End))
		return pallocSrvResult{"sum": pallocSrvHex(uint64(sum)), "start": u(sum.Start()), "max": u(sum.Max()), "end": u(sum.End())}, nil
	case "find_scavenge_candidate", "data_alloc_range":
		aw, err := pallocSrvParseBits(op.Alloc)
		if err != nil {
			return nil, fmt.Errorf("alloc: %v", err)
		}
		sw, err := pallocSrvParseBits(op.Scav)
		if err != nil {
			return nil, fmt.Errorf("scav: %v", err)
		}
		if op.Op == "data_alloc_range" {
			pallocSrvRun(func() { aw, sw = PallocPallocDataAllocRange(aw, sw, uint(op.I), uint(op.N)) })
			return pallocSrvResult{"alloc": pallocSrvBitsHex(aw), "scav": pallocSrvBitsHex(sw)}, nil
		}
		var d PallocData
		copy(d.PallocBits()[:], aw)
		copy(d.Scavenged()[:], sw)
		minimum := op.Min
		if op.Minimum != nil {
			minimum = *op.Minimum
		}
		var base, n uint
		pallocSrvRun(func() { base, n = d.FindScavengeCandidate(uint(op.SearchIdx), uintptr(minimum), uintptr(op.Max)) })
		return pallocSrvResult{"base": u(base), "npages": u(n)}, nil
	case "chunk_index":
		return pallocSrvResult{"ci": h(PallocChunkIndex(uintptr(op.Addr)))}, nil
	case "chunk_base":
		return pallocSrvResult{"addr": h(PallocChunkBase(uintptr(op.C)))}, nil

	// --- addrRanges ---------------------------------------------------------------------
	case "addr_ranges_new":
		var a AddrRanges
		pallocSrvRun(func() { a = NewAddrRanges() })
		s.nextAR++
		s.ars[s.nextAR] = &a
		return pallocSrvResult{"ar": s.nextAR}, nil
	case "addr_ranges_add", "addr_ranges_find_succ", "addr_ranges_find_addr_greater_equal",
		"addr_ranges_contains", "addr_ranges_remove_last", "addr_ranges_remove_greater_equal", "addr_ranges_state",
		"addr_ranges_clone":
		a, err := s.ar(op)
		if err != nil {
			return nil, err
		}
		r := pallocSrvResult{}
		switch op.Op {
		case "addr_ranges_add":
			pallocSrvRun(func() { a.Add(MakeAddrRange(uintptr(op.Base), uintptr(op.Limit))) })
		case "addr_ranges_find_succ":
			var i int
			pallocSrvRun(func() { i = a.FindSucc(uintptr(op.Addr)) })
			r["index"] = i
		case "addr_ranges_find_addr_greater_equal":
			var addr uintptr
			var ok bool
			pallocSrvRun(func() { addr, ok = a.PallocFindAddrGreaterEqual(uintptr(op.Addr)) })
			r["addr"], r["found"] = h(addr), ok
		case "addr_ranges_contains":
			var ok bool
			pallocSrvRun(func() { ok = a.PallocContains(uintptr(op.Addr)) })
			r["contains"] = ok
		case "addr_ranges_remove_last":
			var b, l uintptr
			pallocSrvRun(func() { b, l = a.PallocRemoveLast(uintptr(op.NBytes)) })
			r["removed"] = [2]string{h(b), h(l)}
		case "addr_ranges_remove_greater_equal":
			pallocSrvRun(func() { a.PallocRemoveGreaterEqual(uintptr(op.Addr)) })
		case "addr_ranges_clone": // cloneInto a fresh set, which becomes the most recent
			b := NewAddrRanges()
			pallocSrvRun(func() { a.PallocCloneInto(&b) })
			s.nextAR++
			s.ars[s.nextAR] = &b
			a = &b
			r["ar"] = s.nextAR
		}
		ranges, total := a.PallocAddrRangesState()
		r["ranges"], r["total_bytes"] = pallocSrvRanges(ranges), h(total)
		return r, nil
	}
	return nil, errPallocSrvBadOp
}

func pallocSrvConstants() pallocSrvResult {
	c := PallocConstants()
	h := func(x uintptr) string { return pallocSrvHex(uint64(x)) }
	return pallocSrvResult{
		"goos": runtime.GOOS, "goarch": runtime.GOARCH, "version": runtime.Version(),
		"ptrSize": int(c.PtrSize), "heapAddrBits": c.HeapAddrBits, "arenaBaseOffset": h(c.ArenaBaseOffset),
		"pageSize": int(c.PageSize), "logPallocChunkPages": c.LogPallocChunkPages,
		"pallocChunkPages": c.PallocChunkPages, "pallocChunkBytes": h(c.PallocChunkBytes),
		"summaryLevels": c.SummaryLevels, "summaryLevelBits": c.SummaryLevelBits, "summaryL0Bits": c.SummaryL0Bits,
		"levelBits": c.LevelBits, "levelShift": c.LevelShift, "levelLogPages": c.LevelLogPages,
		"logMaxPackedValue": c.LogMaxPackedValue, "maxPackedValue": c.MaxPackedValue,
		"freeChunkSum": pallocSrvHex(c.FreeChunkSum), "pallocChunksL1Bits": c.PallocChunksL1Bits,
		"pallocChunksL2Bits": c.PallocChunksL2Bits, "minOffAddr": h(c.MinOffAddr), "maxOffAddr": h(c.MaxOffAddr),
		"scavChunkHiOccPages": c.ScavChunkHiOccPages, "baseChunkIdx": h(c.BaseChunkIdx),
		"physPageSize": h(c.PhysPageSize), "physHugePageSize": h(c.PhysHugePageSize),
		"pageAlloc64Bit": c.PageAlloc64Bit,
	}
}

// dump reports an allocator's state; op.Chunks and op.Summaries select how much.
func (s *pallocSrv) dump(pa *pallocSrvPA, op *pallocSrvOp) (pallocSrvResult, error) {
	p := pa.p
	h := func(x uintptr) string { return pallocSrvHex(uint64(x)) }
	start, end := p.PallocBounds()
	inUse, total := p.PallocInUse()
	r := pallocSrvResult{
		"search_addr": h(p.PallocSearchAddr()), "start": h(start), "end": h(end),
		"in_use": pallocSrvRanges(inUse), "in_use_total_bytes": h(total),
		"summary_mapped_ready": h(p.PallocSummaryMappedReady()),
	}

	// Summaries: "live" (default), "mapped", "none", or [[level, lo, hi], ...].
	sel := "live"
	var explicit [][3]int
	if len(op.Summaries) > 0 {
		if op.Summaries[0] == '"' {
			_ = json.Unmarshal(op.Summaries, &sel)
		} else if err := json.Unmarshal(op.Summaries, &explicit); err != nil {
			return nil, fmt.Errorf("summaries must be \"live\", \"mapped\", \"none\" or [[level, lo, hi], ...]")
		} else {
			sel = "explicit"
		}
	}
	if sel != "none" {
		levels := []pallocSrvResult{}
		for l := 0; l < PallocConstants().SummaryLevels; l++ {
			ln, cp := p.PallocSummaryLen(l)
			mapped, live := p.PallocSummaryMapped(l), p.PallocSummaryLive(l)
			var want [][2]int
			switch sel {
			case "live":
				want = live
			case "mapped":
				for _, m := range mapped {
					if m[1] > ln {
						m[1] = ln
					}
					if m[0] < m[1] {
						want = append(want, m)
					}
				}
			case "explicit":
				for _, e := range explicit {
					if e[0] == l {
						want = append(want, [2]int{e[1], e[2]})
					}
				}
			default:
				return nil, fmt.Errorf("summaries must be \"live\", \"mapped\", \"none\" or [[level, lo, hi], ...], not %q", sel)
			}
			segs := []pallocSrvResult{}
			unread := [][2]int{}
			for _, w := range want {
				if vals, ok := p.PallocSummaryRead(l, w[0], w[1]); ok {
					segs = append(segs, pallocSrvResult{"lo": w[0], "raw": pallocSrvHexs(vals)})
					continue
				}
				// A (patched) runtime that maps or slices less than the entries it should
				// have: report what is readable, and the rest as unreadable. The comparison
				// shows the difference; it is the runtime's state, not a harness error.
				lo := w[0]
				for _, m := range mapped {
					a, b := m[0], m[1]
					if a < lo {
						a = lo
					}
					if b > w[1] {
						b = w[1]
					}
					if b > ln {
						b = ln
					}
					if a >= b {
						continue
					}
					if lo < a {
						unread = append(unread, [2]int{lo, a})
					}
					vals, _ := p.PallocSummaryRead(l, a, b)
					segs = append(segs, pallocSrvResult{"lo": a, "raw": pallocSrvHexs(vals)})
					lo = b
				}
				if lo < w[1] {
					unread = append(unread, [2]int{lo, w[1]})
				}
			}
			levels = append(levels, pallocSrvResult{"level": l, "len": ln, "cap": cp, "mapped": mapped, "live": live,
				"entries": segs, "unreadable": unread})
		}
		r["summary"] = levels
	}

	// Chunks: "in_use" (default: every chunk of inUse), "none", or a list of chunk indices.
	var cis []uintptr
	csel := "in_use"
	if len(op.Chunks) > 0 {
		if op.Chunks[0] == '"' {
			_ = json.Unmarshal(op.Chunks, &csel)
		} else {
			var list []pallocSrvU64
			if err := json.Unmarshal(op.Chunks, &list); err != nil {
				return nil, fmt.Errorf("chunks must be \"in_use\", \"none\" or a list of chunk indices")
			}
			for _, c := range list {
				cis = append(cis, uintptr(c))
			}
			csel = "explicit"
		}
	}
	if csel == "in_use" {
		for _, rg := range inUse {
			for c := PallocChunkIndex(rg[0]); c < PallocChunkIndex(rg[1]-1)+1; c++ {
				cis = append(cis, c)
			}
		}
	} else if csel != "none" && csel != "explicit" {
		return nil, fmt.Errorf("chunks must be \"in_use\", \"none\" or a list of chunk indices, not %q", csel)
	}
	chunks := []pallocSrvResult{}
	scavChunks := []pallocSrvResult{}
	for _, ci := range cis {
		c := pallocSrvResult{"ci": h(ci)}
		if a, sc, ok := p.PallocChunkBits(ci); ok {
			c["alloc"], c["scav"] = pallocSrvBitsHex(a), pallocSrvBitsHex(sc)
		} else {
			c["missing"] = true
		}
		chunks = append(chunks, c)
		e := pallocSrvResult{"ci": h(ci)}
		if packed, inU, last, gen, flags, ok := p.PallocScavChunk(ci); ok {
			e["packed"], e["in_use"], e["last_in_use"], e["gen"], e["flags"] = pallocSrvHex(packed), inU, last, gen, flags
		} else {
			e["missing"] = true
		}
		scavChunks = append(scavChunks, e)
	}
	r["chunks"] = chunks

	si := p.PallocScavIndex()
	r["scav_index"] = pallocSrvResult{
		"gen": si.Gen, "min": h(si.Min), "max": h(si.Max), "min_heap_idx": h(si.MinHeapIdx),
		"search_addr_bg": h(si.SearchAddrBg), "search_addr_bg_marked": si.SearchAddrBgMarked,
		"search_addr_force": h(si.SearchAddrForce), "search_addr_force_marked": si.SearchAddrForceMark,
		"free_hwm": h(si.FreeHWM), "chunks": scavChunks,
	}

	slots := make([]int, 0, len(pa.caches))
	for k := range pa.caches {
		slots = append(slots, k)
	}
	pallocSrvSort.Ints(slots)
	caches := []pallocSrvResult{}
	for _, k := range slots {
		c := pallocSrvCacheResult(pa.caches[k])
		c["slot"] = k
		caches = append(caches, c)
	}
	r["caches"] = caches
	return r, nil
}

// pallocSrvBench replays a workload trace (palloc's model/workload.py) in a tight native loop:
// {"ops": [["alloc", npages], ["free", k], ...]}. An alloc appends its address (0 on failure)
// to a list of live handles; ["free", k] swaps the last handle into slot k, pops, and frees
// the handle's pages unless it is 0. It runs once, on the allocator named by "pa".
func pallocSrvBench(p *PageAlloc, op *pallocSrvOp) (pallocSrvResult, error) {
	var tr struct {
		Ops [][]pallocSrvU64Str `json:"ops"`
	}
	if err := json.Unmarshal(op.Trace, &tr); err != nil {
		return nil, fmt.Errorf("trace: %v", err)
	}
	type step struct {
		free bool
		arg  uintptr
	}
	steps := make([]step, len(tr.Ops))
	live, nallocs := 0, 0
	for i, o := range tr.Ops {
		if len(o) != 2 {
			return nil, fmt.Errorf("trace op %d: want [verb, arg]", i)
		}
		switch o[0].s {
		case "alloc":
			steps[i] = step{false, uintptr(o[1].u)}
			live++
			nallocs++
		case "free":
			if o[1].u >= uint64(live) {
				return nil, fmt.Errorf("trace op %d: free of handle %d with %d live", i, o[1].u, live)
			}
			steps[i] = step{true, uintptr(o[1].u)}
			live--
		default:
			return nil, fmt.Errorf("trace op %d: unknown verb %q", i, o[0].s)
		}
	}
	addrs := make([]uintptr, 0, nallocs)
	liveAddr := make([]uintptr, 0, nallocs)
	liveN := make([]uintptr, 0, nallocs)
	var scavBytes uintptr
	failed, skipped, peak := 0, 0, 0
	t0 := time.Now()
	for _, st := range steps {
		if !st.free {
			a, sc := p.Alloc(st.arg)
			if a == 0 {
				failed++
			} else {
				scavBytes += sc
			}
			addrs = append(addrs, a)
			liveAddr = append(liveAddr, a)
			liveN = append(liveN, st.arg)
			if len(liveAddr) > peak {
				peak = len(liveAddr)
			}
			continue
		}
		k, last := st.arg, len(liveAddr)-1
		a, n := liveAddr[k], liveN[k]
		liveAddr[k], liveN[k] = liveAddr[last], liveN[last]
		liveAddr, liveN = liveAddr[:last], liveN[:last]
		if a == 0 {
			skipped++
		} else {
			p.Free(a, n)
		}
	}
	el := time.Since(t0)
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = pallocSrvHex(uint64(a))
	}
	return pallocSrvResult{
		"elapsed_ns": el.Nanoseconds(), "results": out, "allocs": nallocs, "frees": len(steps) - nallocs,
		"failed_allocs": failed, "skipped_frees": skipped, "scav_bytes": pallocSrvHex(uint64(scavBytes)), "peak_live": peak,
	}, nil
}

// pallocSrvU64Str is a trace element: a verb string or an unsigned integer.
type pallocSrvU64Str struct {
	s string
	u uint64
}

func (v *pallocSrvU64Str) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &v.s); err != nil {
			return err
		}
		if x, err := pallocSrvParseUint(v.s); err == nil {
			v.u = x
		}
		return nil
	}
	x, err := strconv.ParseUint(string(b), 10, 64)
	v.u = x
	return err
}

// --- the digest lockstep ("steps") ---------------------------------------------------------

// pallocSrvResultFields are, per operation, the result fields a step digest covers, in
// order: the model's result tuple (palloc's goref/go_side.py:result_of).
var pallocSrvResultFields = map[string][]string{
	"alloc": {"addr", "scav"}, "cache_alloc": {"addr", "scav_bytes"}, "alloc_to_cache": {"base", "cache", "scav"},
	"scavenge": {"released"}, "find": {"addr", "search_addr"}, "alloc_range": {"scav"},
	"bits_find": {"index", "search_idx"}, "bits_summarize": {"sum"}, "find_bit_range64": {"index"},
	"find_scavenge_candidate": {"base", "npages"}, "fill_aligned": {"x"},
}

// steps runs op.Steps in order, as a batch would, and returns for every step that carries
// "touch" the digest of its result and touched state (pallocSrvDigest), concatenated as 16
// hex digits each, plus the result of every "dump" step in "dumps". It stops at the first
// step that does not succeed and returns that step's index ("stop_at") and result ("stop").
// The canonical form is documented in palloc's goref/README.md ("Digests").
func (s *pallocSrv) steps(op *pallocSrvOp) (pallocSrvResult, error) {
	var sb strings.Builder
	sb.Grow(16 * len(op.Steps))
	dumps := []pallocSrvResult{}
	buf := make([]byte, 0, 4096)
	// Marks on stderr, one per batch and one per heap, so that a runtime that dies in the
	// batch is blamed on the heap it was running (goref/driver.py).
	os.Stderr.WriteString("palloc-batch\n")
	for k, raw := range op.Steps {
		var sub pallocSrvOp
		if err := json.Unmarshal(raw, &sub); err != nil {
			return pallocSrvResult{"digests": sb.String(), "dumps": dumps, "stop_at": k,
				"stop": pallocSrvResult{"kind": "error", "msg": "bad op: " + err.Error()}}, nil
		}
		if sub.Op == "new" {
			os.Stderr.WriteString("palloc-heap " + strconv.Itoa(k) + "\n")
		}
		r := s.doOp(&sub)
		if r["kind"] != "ok" {
			return pallocSrvResult{"digests": sb.String(), "dumps": dumps, "stop_at": k, "stop": r}, nil
		}
		if sub.Op == "dump" {
			dumps = append(dumps, r)
		}
		if sub.Touch == nil {
			continue
		}
		buf = s.digestWords(buf[:0], &sub, r)
		sum := pallocSrvSHA256.Sum256(buf)
		sb.WriteString(pallocSrvHexEnc.EncodeToString(sum[:8]))
	}
	return pallocSrvResult{"digests": sb.String(), "dumps": dumps}, nil
}

var pallocSrvConstsCache *PallocConsts

// pallocSrvConsts returns PallocConstants(), computed once.
func pallocSrvConsts() *PallocConsts {
	if pallocSrvConstsCache == nil {
		c := PallocConstants()
		pallocSrvConstsCache = &c
	}
	return pallocSrvConstsCache
}

// digestWords appends a step's canonical words (little-endian uint64s) to buf: the result
// words, then, for an operation on a page allocator, the state the step touched.
func (s *pallocSrv) digestWords(buf []byte, op *pallocSrvOp, r pallocSrvResult) []byte {
	w := func(x uint64) { buf = pallocSrvBinary.LittleEndian.AppendUint64(buf, x) }
	if f, ok := pallocSrvRangesFields[op.Op]; ok {
		return pallocSrvRangesWords(buf, f, r)
	}
	fields := pallocSrvResultFields[op.Op]
	w(uint64(len(fields)))
	for _, f := range fields {
		v, _ := r[f].(string)
		x, _ := pallocSrvParseUint(v)
		w(x)
	}
	if op.Op != "new" && !pallocSrvPAOps[op.Op] {
		return buf
	}
	pa, err := s.pa(op)
	if err != nil {
		return buf
	}
	p := pa.p
	start, end := p.PallocBounds()
	inUse, total := p.PallocInUse()
	w(uint64(p.PallocSearchAddr()))
	w(uint64(start))
	w(uint64(end))
	w(uint64(total))
	w(uint64(len(inUse)))
	touch := *op.Touch
	w(uint64(len(touch)))
	for _, c := range touch {
		ci := uintptr(c)
		w(uint64(ci))
		if a, sc, ok := p.PallocChunkBits(ci); ok {
			w(1)
			for _, x := range a {
				w(x)
			}
			for _, x := range sc {
				w(x)
			}
		} else {
			w(0)
		}
		if packed, _, _, _, _, ok := p.PallocScavChunk(ci); ok {
			w(1)
			w(packed)
		} else {
			w(0)
		}
	}
	c := pallocSrvConsts()
	leaf := c.SummaryLevels - 1
	for l := 0; l < c.SummaryLevels; l++ {
		mapped := p.PallocSummaryMapped(l)
		last := ^uint64(0)
		for _, t := range touch { // ascending, so equal indices are adjacent
			i := uint64(t) >> (c.LevelShift[l] - c.LevelShift[leaf])
			if i == last {
				continue
			}
			last = i
			w(i)
			v, _ := p.PallocSummaryAt(l, int(i), mapped) // 0 when not mapped
			w(v)
		}
	}
	si := p.PallocScavIndex()
	b := func(x bool) uint64 {
		if x {
			return 1
		}
		return 0
	}
	w(uint64(si.Gen))
	w(uint64(si.FreeHWM))
	w(uint64(si.MinHeapIdx))
	w(uint64(si.SearchAddrBg))
	w(b(si.SearchAddrBgMarked))
	w(uint64(si.SearchAddrForce))
	w(b(si.SearchAddrForceMark))
	slots := make([]int, 0, len(pa.caches))
	for k := range pa.caches {
		slots = append(slots, k)
	}
	pallocSrvSort.Ints(slots)
	w(uint64(len(slots)))
	for _, k := range slots {
		pc := pa.caches[k]
		w(uint64(k))
		w(uint64(pc.Base()))
		w(pc.Cache())
		w(pc.Scav())
	}
	return buf
}

// pallocSrvRangesFields are, per addrRanges verb, its own result fields in digest order; the
// set after the verb follows them (palloc's goref/go_side.py:addr_ranges_result).
var pallocSrvRangesFields = map[string][]string{
	"addr_ranges_add": {}, "addr_ranges_find_succ": {"index"}, "addr_ranges_find_addr_greater_equal": {"addr", "found"},
	"addr_ranges_contains": {"contains"}, "addr_ranges_remove_last": {"removed"}, "addr_ranges_remove_greater_equal": {},
	"addr_ranges_clone": {},
}

// pallocSrvRangesWords appends an addrRanges verb's result words: their number, the verb's own
// fields (ints and bools as numbers, [base, limit] as two words), totalBytes, the number of
// ranges, and each range's base and limit.
func pallocSrvRangesWords(buf []byte, fields []string, r pallocSrvResult) []byte {
	var ws []uint64
	for _, f := range fields {
		switch v := r[f].(type) {
		case int:
			ws = append(ws, uint64(v))
		case bool:
			if v {
				ws = append(ws, 1)
			} else {
				ws = append(ws, 0)
			}
		case string:
			x, _ := pallocSrvParseUint(v)
			ws = append(ws, x)
		case [2]string:
			x, _ := pallocSrvParseUint(v[0])
			y, _ := pallocSrvParseUint(v[1])
			ws = append(ws, x, y)
		}
	}
	t, _ := pallocSrvParseUint(r["total_bytes"].(string))
	ranges, _ := r["ranges"].([][2]string)
	ws = append(ws, t, uint64(len(ranges)))
	for _, rg := range ranges {
		x, _ := pallocSrvParseUint(rg[0])
		y, _ := pallocSrvParseUint(rg[1])
		ws = append(ws, x, y)
	}
	buf = pallocSrvBinary.LittleEndian.AppendUint64(buf, uint64(len(ws)))
	for _, x := range ws {
		buf = pallocSrvBinary.LittleEndian.AppendUint64(buf, x)
	}
	return buf
}
