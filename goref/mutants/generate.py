"""Write the mutant corpus: one git-style .patch per mutant against the Go 1.27.3 runtime, and manifest.toml.

This file is the corpus's single source: each entry names the runtime file, the exact text it replaces
(which must occur exactly once, so a mutant never lands on the wrong line), the replacement, and the
metadata the manifest records. Patches are made by `git diff --no-index` against pristine copies
(goref/patch.py unified_diff), so they apply with `git apply` to an untouched toolchain.

The measured columns of the manifest (`runtime_tests`, `runtime_tests_failed`, `compiles`) come from
goref/mutants/baseline.json, written by `palloc mutants baseline`, and from compile.json
(`palloc mutants baseline --compile-only`); palloc's own measured verdicts from palloc-results.json
(`palloc mutants merge` of the JSON reports of `palloc mutants`).

Run: `palloc mutants generate [--goroot DIR]` (from a source checkout: it writes into goref/mutants/).
"""

from __future__ import annotations

import json
from pathlib import Path

from palloc.goref.files import write_atomic
from palloc.goref.patch import unified_diff
from palloc.spec.errors import PallocError

HERE = Path(__file__).resolve().parent
GO_VERSION = "go1.27.3"
R = "src/runtime/"

# Fields: id, title, bug (B1..B16 or "novel"), component, expected ("breaks" | "equivalent" |
# "no divergence found"), check (what should catch it), reason (for equivalents), file, old, new.
# `kind` is "mutant", "benign" or "policy" (a valid policy change: expected "changes behaviour");
# `also`, an optional second (old, new) edit of the same file; `expected_on`, the expectation on a
# GOARCH where it differs (a fault in arenaBaseOffset arithmetic is equivalent where the offset is 0).
# The entries are data, one dict per patch, alike by design.
MUTANTS: list[dict] = [
    # --- historical bugs -------------------------------------------------------------------------
    dict(id="b1-find1-addr-plus-one", title="pallocBits.find returns searchIdx addr+1 for npages == 1",
         bug="B1", component="bit searches", expected="breaks",
         check="invariant search_addr_in_use / crash on an unmapped summary (DiscontiguousMappedSumBoundary)",
         file="mpallocbits.go", old="\t\treturn addr, addr\n", new="\t\treturn addr, addr+1\n"),
    dict(id="b2-alloc-to-cache-searchaddr-past-cache", title="allocToCache sets searchAddr one past the cache",
         bug="B2", component="page cache", expected="breaks",
         check="invariant search_addr_in_use / crash on an unmapped summary",
         file="mpagecache.go", old="p.searchAddr = offAddr{c.base + pageSize*(pageCachePages-1)}",
         new="p.searchAddr = offAddr{c.base + pageSize*pageCachePages}"),
    dict(id="b3-find-unmapped-searchaddr-straddle", title="find returns firstFree.base unvalidated (straddling-run return)",
         bug="B3", component="find", expected="breaks",
         check="invariant search_addr_in_use / crash (DiscontiguousBadSearchAddr)",
         file="mpagealloc.go",
         old="\t\t\treturn addr, p.findMappedAddr(firstFree.base)\n",
         new="\t\t\treturn addr, firstFree.base\n"),
    dict(id="b3-find-unmapped-searchaddr-chunk", title="find returns firstFree.base unvalidated (in-chunk return)",
         bug="B3", component="find", expected="breaks",
         check="state comparison of searchAddr / invariant search_addr_in_use; needs a discontiguous heap whose later region starts inside a level-3 block (8 chunks), whose first block has too few free pages (firstFree then stays at the unmapped block base)",
         file="mpagealloc.go",
         old="\tfoundFree(offAddr{searchAddr}, chunkBase(ci+1)-searchAddr)\n\treturn addr, p.findMappedAddr(firstFree.base)\n",
         new="\tfoundFree(offAddr{searchAddr}, chunkBase(ci+1)-searchAddr)\n\treturn addr, firstFree.base\n"),
    dict(id="b4-alloc-dead-sanity-check", title="alloc's fast-path sanity check tests j < 0 on a uint (dead)",
         bug="B4", component="alloc/free/searchAddr", expected="equivalent",
         reason="the check only fires on summary/bitmap corruption, which a correct allocator never produces",
         check="none without injected corruption",
         file="mpagealloc.go",
         old="\t\t\tif j == ^uint(0) {\n\t\t\t\tprint(\"runtime: max = \"",
         new="\t\t\tif j < 0 {\n\t\t\t\tprint(\"runtime: max = \""),
    dict(id="b4-find-dead-sanity-check", title="find's in-chunk sanity check tests j < 0 on a uint (dead)",
         bug="B4", component="find", expected="equivalent",
         reason="the check only fires on summary/bitmap corruption, which a correct allocator never produces",
         check="none without injected corruption",
         file="mpagealloc.go",
         old="\tj, searchIdx := p.chunkOf(ci).find(npages, 0)\n\tif j == ^uint(0) {\n",
         new="\tj, searchIdx := p.chunkOf(ci).find(npages, 0)\n\tif j < 0 {\n"),
    dict(id="b5-scavengeone-no-summary-guard", title="scavengeOne searches the chunk without checking its summary",
         bug="B5", component="scavenging", expected="equivalent",
         reason="in 1.27 the scavenge index only offers existing chunks, and findScavengeCandidate finds no "
                "candidate exactly when the chunk's max free run is below minPages",
         check="scavenge differential (returned bytes, scavenged bitmap)",
         file="mgcscavenge.go",
         old="\tif p.summary[len(p.summary)-1][ci].max() >= uint(minPages) {\n",
         new="\tif true {\n"),
    dict(id="b7-force-uses-background-cursor", title="scavengeIndex.find uses the background cursor when forced (and vice versa)",
         bug="B7", component="scavenging", expected="breaks",
         check="scavenge differential (which chunk/pages are scavenged, returned bytes)",
         file="mgcscavenge.go", old="\tcursor := &s.searchAddrBg\n\tif force {\n",
         new="\tcursor := &s.searchAddrBg\n\tif !force {\n"),
    dict(id="b7-free-forgets-force-cursor", title="scavengeIndex.free does not raise searchAddrForce",
         bug="B7", component="scavenging", expected="breaks",
         check="scavenge differential: a forced scavenge misses freed memory above the cursor",
         file="mgcscavenge.go",
         old="\tsearchAddr, _ := s.searchAddrForce.Load()\n\tif (offAddr{searchAddr}).lessThan(offAddr{addr}) {\n\t\ts.searchAddrForce.StoreMarked(addr)\n\t}\n",
         new=""),
    dict(id="b7-nextgen-keeps-free-hwm", title="scavengeIndex.nextGen does not reset freeHWM",
         bug="B7", component="scavenging", expected="changes behaviour",
         reason="judged against the spec, a valid policy: a freeHWM never reset raises the background cursor to a stale "
         "high-water mark at the next nextGen, so the background scavenger looks at more chunks (freedoms "
         "scavenge_index_bookkeeping and scavenge_pacing); a forced scavenge, B7's real harm, is unchanged. --strict breaks",
         check="scavenge differential (background cursor after nextGen)",
         file="mgcscavenge.go",
         old="\t\ts.searchAddrBg.StoreMarked(s.freeHWM.addr())\n\t}\n\ts.freeHWM = minOffAddr\n",
         new="\t\ts.searchAddrBg.StoreMarked(s.freeHWM.addr())\n\t}\n"),
    dict(id="b8-chunkindex-offset-sign", title="chunkIndex adds arenaBaseOffset instead of subtracting it",
         bug="B8", component="offset arithmetic", expected="breaks", expected_on={"386": "equivalent"},
         check="crash/throw on amd64 (arenaBaseOffset != 0); equivalent on 386 (arenaBaseOffset == 0)",
         file="mpagealloc.go", old="\treturn chunkIdx((p - arenaBaseOffset) / pallocChunkBytes)\n",
         new="\treturn chunkIdx((p + arenaBaseOffset) / pallocChunkBytes)\n"),
    dict(id="b8-maxoffaddr-without-offset", title="maxOffAddr forgets arenaBaseOffset",
         bug="B8", component="offset arithmetic", expected="breaks", expected_on={"386": "equivalent"},
         check="throw 'range partially overlaps' in find / heap-exhausted sentinel wrong on amd64; equivalent on 386",
         file="mranges.go",
         old="maxOffAddr = offAddr{(((1 << heapAddrBits) - 1) + arenaBaseOffset) & uintptrMask}",
         new="maxOffAddr = offAddr{((1 << heapAddrBits) - 1) & uintptrMask}"),
    dict(id="b9-remove-greater-equal-by-subtract", title="addrRange.removeGreaterEqual via subtract(addr, maxOffAddr)",
         bug="B9", component="address ranges", expected="breaks", expected_on={"386": "equivalent"},
         check='translation validation: on amd64 removeGreaterEqual differs for a range whose limit lies above maxOffAddr (an '
               'inclusive bound), confirmed in the patched runtime; on 386 it is proved equivalent (maxOffAddr is the top of the '
               '32-bit space). The differential cannot reach it on linux/amd64 and 386, whose heap ranges never reach the top of '
               'the address space (it can on mips/mipsle): filed equivalent before translation validation ran first',
         file="mranges.go", old="\treturn makeAddrRange(a.base.addr(), addr)\n",
         new="\treturn a.subtract(makeAddrRange(addr, maxOffAddr.addr()))\n"),
    dict(id="b12-sysgrow-havemin", title="scavengeIndex.sysGrow tests haveMin == 0 instead of haveMax == 0",
         bug="B12", component="scavenging", expected="equivalent",
         reason='on linux/amd64 chunk indices of any heap outside the first 2 GiB of the offset space are >= 512, so needMin never aligns down to 0 and haveMin is never 0 after the first grow (sysGrow is a no-op on 32-bit); it breaks where the heap is that low (openbsd/riscv64, arenaBaseOffset 0)',
         check="grow low/high/low at chunk indices < 512 remaps and zeroes live index data: throw 'allocated pages below zero?'",
         file="mpagealloc_64bit.go", old="\t\tif haveMax == 0 || needMin < haveMin {\n",
         new="\t\tif haveMin == 0 || needMin < haveMin {\n"),
    dict(id="b13-index-find-min-not-minheapidx", title="scavengeIndex.find loops down to the backing store's min, not minHeapIdx",
         bug="B13", component="scavenging", expected="equivalent",
         reason="on amd64 test heaps min > 0 and index entries below minHeapIdx are zero (empty), so they are skipped; "
                "breaks only where min aligns down to 0 (the unsigned loop wraps)",
         check="crash when the index's min is 0; otherwise none",
         file="mgcscavenge.go", old="\tmin := chunkIdx(s.minHeapIdx.Load())\n",
         new="\tmin := chunkIdx(s.min.Load())\n"),
    dict(id="b13-index-find-loop-to-zero", title="scavengeIndex.find's unsigned loop runs to i >= 0 (min-min), so it wraps",
         bug="B13", component="scavenging", expected="breaks",
         check="crash (index out of range) when the index holds no candidate",
         file="mgcscavenge.go", old="\tfor i := start; i >= min; i-- {\n",
         new="\tfor i := start; i >= min-min; i-- {\n"),
    dict(id="b15-huge-page-below-strict", title="findScavengeCandidate: hugePageBelow >= end-run becomes >",
         bug="B15", component="scavenging", expected="changes behaviour",
         reason="judged against the spec, a valid policy: how a candidate is widened to keep huge pages whole decides only how many free, unscavenged pages beyond the request are released (freedom scavenge_choice; the doc: \"may scavenge more to avoid breaking huge pages\"); every candidate stays free and unscavenged. B15 itself (huge pages as large as a chunk) cannot arise where physHugePageSize < pallocChunkBytes. The runtime's test TestPallocDataFindScavengeCandidate pins the old rounding; --strict breaks",
         check="findScavengeCandidate differential with physHugePageSize as a parameter (PreserveHugePage cases)",
         file="mgcscavenge.go", old="\t\t\tif hugePageBelow >= end-run {\n",
         new="\t\t\tif hugePageBelow > end-run {\n"),
    dict(id="b15-huge-page-below-alignup", title="findScavengeCandidate rounds the huge page below up instead of down",
         bug="B15", component="scavenging", expected="changes behaviour",
         reason="judged against the spec, a valid policy: how a candidate is widened to keep huge pages whole decides only how many free, unscavenged pages beyond the request are released (freedom scavenge_choice; the doc: \"may scavenge more to avoid breaking huge pages\"); every candidate stays free and unscavenged. B15 itself (huge pages as large as a chunk) cannot arise where physHugePageSize < pallocChunkBytes. The runtime's test TestPallocDataFindScavengeCandidate pins the old rounding; --strict breaks",
         check="findScavengeCandidate differential (returned start/size)",
         file="mgcscavenge.go", old="\t\t\thugePageBelow := uint(alignDown(uintptr(start), pagesPerHugePage))\n",
         new="\t\t\thugePageBelow := uint(alignUp(uintptr(start), pagesPerHugePage))\n"),
    dict(id="b16-zero-search-sentinel", title="maxSearchAddr() returns the zero offAddr",
         bug="B16", component="alloc/free/searchAddr", expected="breaks",
         check="crash reading summary[chunkIndex(0)] after init/exhaustion; invariant search_addr_in_use",
         file="mpagealloc.go", old="func maxSearchAddr() offAddr { return maxOffAddr }\n",
         new="func maxSearchAddr() offAddr { return offAddr{} }\n"),
    # --- novel, by component ---------------------------------------------------------------------
    dict(id="n-packing-end-shift", title="pallocSum.end extracts with the max field's shift",
         bug="novel", component="packing", expected="breaks",
         check="pack/unpack round trip (proof) and alloc differential",
         file="mpagealloc.go", old="\treturn uint((uint64(p) >> (2 * logMaxPackedValue)) & (maxPackedValue - 1))\n",
         new="\treturn uint((uint64(p) >> logMaxPackedValue) & (maxPackedValue - 1))\n"),
    dict(id="n-packing-all-free-test-on-start", title="packPallocSum tests start, not max, for the all-free encoding",
         bug="novel", component="packing", expected="equivalent",
         reason="for summaries of real bitmaps start == maxPackedValue exactly when max == maxPackedValue",
         check="pack proof over valid summaries finds none; only invalid (start, max, end) inputs differ",
         file="mpagealloc.go", old="\tif max == maxPackedValue {\n\t\treturn pallocSum(uint64(1 << 63))\n",
         new="\tif start == maxPackedValue {\n\t\treturn pallocSum(uint64(1 << 63))\n"),
    dict(id="n-merge-no-straddle", title="mergeSummaries ignores runs straddling two children (end+si)",
         bug="novel", component="merge", expected="breaks",
         check="merge proof against the slow merge; find differential (multi-chunk allocations)",
         file="mpagealloc.go", old="\t\tmost = max(most, end+si, mi)\n", new="\t\tmost = max(most, mi)\n"),
    dict(id="n-merge-start-off-by-one", title="mergeSummaries extends start only when i+1 children are free",
         bug="novel", component="merge", expected="breaks",
         check="merge proof against the slow merge; find differential",
         file="mpagealloc.go", old="\t\tif start == uint(i)<<logMaxPagesPerSum {\n",
         new="\t\tif start == uint(i+1)<<logMaxPagesPerSum {\n"),
    dict(id="n-summarize-shortcut-61", title="summarize skips the inner-run search when most >= 61 (not 62)",
         bug="novel", component="summarize", expected="breaks",
         check="summarize vs summarize readable twin (a word 1 0^62 1 inside the chunk)",
         file="mpallocbits.go", old="\tif most >= 64-2 {\n", new="\tif most >= 64-3 {\n"),
    dict(id="n-summarize-shortcut-63", title="summarize skips the inner-run search only when most >= 63",
         bug="novel", component="summarize", expected="equivalent",
         reason="the shortcut is an optimisation: the run-shrinking loop is correct for any most",
         check="none (slower only)",
         file="mpallocbits.go", old="\tif most >= 64-2 {\n", new="\tif most >= 64-1 {\n"),
    dict(id="n-summarize-drops-tail-run", title="summarize forgets the trailing run when computing max",
         bug="novel", component="summarize", expected="breaks",
         check="summarize vs readable twin; alloc differential",
         file="mpallocbits.go", old="\tmost = max(most, cur)\n\n\tif most >= 64-2 {\n", new="\n\tif most >= 64-2 {\n"),
    dict(id="n-findbitrange64-p-equals-n", title="findBitRange64 shrinks runs by n instead of n-1",
         bug="novel", component="bit searches", expected="breaks",
         check="findBitRange64 vs readable twin; page cache allocN differential",
         file="mpallocbits.go", old="\tp := n - 1   // number of 1s we want to remove.\n",
         new="\tp := n       // number of 1s we want to remove.\n"),
    dict(id="n-findbitrange64-strict-le", title="findBitRange64 tests p < k instead of p <= k",
         bug="novel", component="bit searches", expected="equivalent",
         reason="when p == k the loop body does the same shift, then returns TrailingZeros64 (64 if c == 0)",
         check="none (findBitRange64 readable-twin property holds)",
         file="mpallocbits.go", old="\t\tif p <= k {\n\t\t\t// Shift p 0s down into the top of each run of 1s.\n",
         new="\t\tif p < k {\n\t\t\t// Shift p 0s down into the top of each run of 1s.\n"),
    dict(id="n-findsmalln-straddle-strict", title="findSmallN misses exact-fit runs straddling a word boundary",
         bug="novel", component="bit searches", expected="breaks",
         check="alloc differential (first fit violated), find vs readable twin",
         file="mpallocbits.go", old="\t\tif end+start >= uint(npages) {\n", new="\t\tif end+start > uint(npages) {\n"),
    dict(id="n-findlargen-exact-fit-fails", title="findLargeN rejects a run of exactly npages at the chunk's end",
         bug="novel", component="bit searches", expected="equivalent",
         reason="findLargeN only runs for npages > 64, and its loop leaves size < npages on every exit: a zero "
                "word after a run is tested (s+size >= npages returns) before size += 64, so size grows only "
                "while it stays below npages; size = LeadingZeros64(x) is at most 64; size = 0 on a full word. "
                "The final size < npages test is always true, so <= changes nothing (checked by brute force "
                "too: 300,000 bitmaps, npages 65-512, any searchIdx)",
         check="none (an exact fit ending at the chunk's end is returned inside the loop); the fuzzer's exact-fit "
               "rule and the exact-fit-at-chunk-end broken twin cover the bug this mutant was meant to be",
         file="mpallocbits.go", old="\tif size < uint(npages) {\n\t\treturn ^uint(0), newSearchIdx\n",
         new="\tif size <= uint(npages) {\n\t\treturn ^uint(0), newSearchIdx\n"),
    dict(id="n-find-exact-fit-strict", title="find (radix walk) requires a strictly longer straddling run",
         bug="novel", component="find", expected="breaks",
         check="alloc differential: first fit violated across chunk boundaries",
         file="mpagealloc.go", old="\t\t\tif size+s >= uint(npages) {\n", new="\t\t\tif size+s > uint(npages) {\n"),
    dict(id="n-find-run-without-base", title="find continues a run through a free entry without starting it",
         bug="novel", component="find", expected="breaks",
         check="alloc differential (wrong base for multi-chunk runs)",
         file="mpagealloc.go", old="\t\t\tif size == 0 || s < 1<<logMaxPages {\n",
         new="\t\t\tif s < 1<<logMaxPages {\n"),
    dict(id="n-alloc-exhausted-any-size", title="a failed alloc of any size marks the heap exhausted",
         bug="novel", component="alloc/free/searchAddr", expected="breaks",
         check="alloc differential: later small allocations fail although pages are free",
         file="mpagealloc.go", old="\t\tif npages == 1 {\n\t\t\t// We failed to find a single free page",
         new="\t\tif npages >= 1 {\n\t\t\t// We failed to find a single free page"),
    dict(id="n-free-keeps-searchaddr", title="free does not lower searchAddr",
         bug="novel", component="alloc/free/searchAddr", expected="breaks",
         check="invariant below_search_addr_allocated; alloc differential (first fit)",
         file="mpagealloc.go",
         old="\t// If we're freeing pages below the p.searchAddr, update searchAddr.\n\tif b := (offAddr{base}); b.lessThan(p.searchAddr) {\n\t\tp.searchAddr = b\n\t}\n",
         new=""),
    dict(id="n-free-multichunk-last-page", title="free of a multi-chunk range leaves the last page allocated",
         bug="novel", component="alloc/free/searchAddr", expected="breaks",
         check="free differential (bitmap of the last chunk)",
         file="mpagealloc.go", old="\t\t\tp.chunkOf(ec).free(0, ei+1)\n", new="\t\t\tp.chunkOf(ec).free(0, ei)\n"),
    dict(id="n-allocrange-scav-count", title="allocRange counts scavenged pages of one page less",
         bug="novel", component="alloc/free/searchAddr", expected="breaks",
         check="alloc differential (returned scav bytes)",
         file="mpagealloc.go", old="\t\tscav += chunk.scavenged.popcntRange(si, ei+1-si)\n",
         new="\t\tscav += chunk.scavenged.popcntRange(si, ei-si)\n"),
    dict(id="n-update-exclusive-limit", title="update passes the inclusive limit where addrsToSummaryRange wants an exclusive one",
         bug="novel", component="update", expected="equivalent",
         reason="limit = base+npages*pageSize-1 is never a multiple of a level's span, so "
                "addrsToSummaryRange(l, base, limit) = addrsToSummaryRange(l, base, limit+1) "
                "(proved: addresses.update_range_inclusive_limit_harmless)",
         check="proof addresses.update_range_inclusive_limit_harmless (no behaviour changes)",
         file="mpagealloc.go", old="\t\tlo, hi := addrsToSummaryRange(l, base, limit+1)\n",
         new="\t\tlo, hi := addrsToSummaryRange(l, base, limit)\n"),
    dict(id="n-update-no-early-return", title="update's single-chunk fast path never returns early",
         bug="novel", component="update", expected="equivalent",
         reason="when the leaf summary is unchanged the upper levels are recomputed to the same values",
         check="none (slower only)",
         file="mpagealloc.go", old="\t\tif x == y {\n", new="\t\tif x == y && false {\n"),
    dict(id="n-update-contig-free-zero", title="update's contiguous free marks middle chunks as fully allocated",
         bug="novel", component="update", expected="breaks",
         check="invariant summaries_consistent; alloc differential after a multi-chunk free",
         file="mpagealloc.go", old="\t\t\t\twhole[i] = freeChunkSum\n", new="\t\t\t\twhole[i] = 0\n"),
    dict(id="n-grow-keeps-searchaddr", title="grow does not lower searchAddr to the new memory",
         bug="novel", component="grow", expected="breaks",
         check="alloc differential: allocation fails after the first grow",
         file="mpagealloc.go",
         old="\tif b := (offAddr{base}); b.lessThan(p.searchAddr) {\n\t\tp.searchAddr = b\n\t}\n\n\t// Add entries into chunks",
         new="\n\t// Add entries into chunks"),
    dict(id="n-grow-not-scavenged", title="grow does not mark newly-grown memory scavenged",
         bug="novel", component="grow", expected="breaks",
         check="alloc differential (returned scav bytes); scavenged bitmap comparison",
         file="mpagealloc.go", old="\t\tp.chunkOf(c).scavenged.setRange(0, pallocChunkPages)\n", new=""),
    dict(id="n-pagecache-allocn-bad-failure-test", title="pageCache.allocN tests i > 64 for failure (findBitRange64 returns 64)",
         bug="novel", component="page cache", expected="breaks",
         check="page cache differential: allocN returns base+64 pages instead of 0",
         file="mpagecache.go", old="\tif i >= 64 {\n", new="\tif i > 64 {\n"),
    dict(id="n-pagecache-alloc-keeps-scav", title="pageCache.alloc(1) does not clear the page's scavenged bit",
         bug="novel", component="page cache", expected="breaks",
         check="page cache differential (scav bytes of later allocations, flush state)",
         file="mpagecache.go", old="\t\tc.scav &^= 1 << i  // clear bit to mark unscavenged\n", new=""),
    dict(id="n-pagecache-flush-drops-scav", title="pageCache.flush does not restore scavenged bits",
         bug="novel", component="page cache", expected="breaks",
         check="flush differential (scavenged bitmap)",
         file="mpagecache.go", old="\t\tif c.scav&(1<<i) != 0 {\n\t\t\tp.chunkOf(ci).scavenged.setRange(pi+i, 1)\n\t\t}\n",
         new=""),
    dict(id="n-ranges-findsucc-lessequal", title="addrRanges.findSucc's linear scan uses lessEqual",
         bug="novel", component="address ranges", expected="breaks",
         check="addrRanges differential: contains(base of a range) is false",
         file="mranges.go", old="\t\tif base.lessThan(a.ranges[i].base) {\n\t\t\treturn i\n",
         new="\t\tif base.lessEqual(a.ranges[i].base) {\n\t\t\treturn i\n"),
    dict(id="n-ranges-add-no-coalesce-up", title="addrRanges.add never coalesces with the range above",
         bug="novel", component="address ranges", expected="breaks",
         check="addrRanges normal form (adjacent ranges must be merged); AddrRangesAdd",
         file="mranges.go", old="\tcoalescesUp := i < len(a.ranges) && r.limit.equal(a.ranges[i].base)\n",
         new="\tcoalescesUp := false && i < len(a.ranges) && r.limit.equal(a.ranges[i].base)\n"),
    dict(id="n-offaddr-raw-compare", title="offAddr.lessThan compares raw addresses, not offsets",
         bug="novel", component="offset arithmetic", expected="breaks", expected_on={"386": "equivalent"},
         check="throw 'range partially overlaps' on amd64 (minOffAddr above the heap); equivalent on 386",
         file="mranges.go", old="\treturn (l1.a - arenaBaseOffset) < (l2.a - arenaBaseOffset)\n",
         new="\treturn l1.a < l2.a\n"),
    dict(id="n-filealigned-shift", title="fillAligned's final step shifts by m instead of m-1",
         bug="novel", component="scavenging", expected="breaks",
         check="fillAligned vs readable twin (m >= 2; minPages is 1 on amd64, so only unit-level checks see it)",
         file="mgcscavenge.go", old="\treturn ^((x - (x >> (m - 1))) | x)\n", new="\treturn ^((x - (x >> m)) | x)\n"),
    dict(id="n-scavenge-candidate-unbounded", title="findScavengeCandidate ignores max (size := run)",
         bug="novel", component="scavenging", expected="changes behaviour",
         reason="judged against the spec, a valid policy: findScavengeCandidate's doc calls max a hint, and "
         "releasing a whole free run (more than asked) keeps every obligation; the scavenged bytes are "
         "reported exactly (freedom scavenge_choice). Any divergence from the model breaks with --strict",
         check="scavenge differential: more bytes released than asked; the spec accepts it",
         file="mgcscavenge.go", old="\tsize := min(run, uint(max))\n", new="\tsize := run\n"),
    dict(id="n-should-scavenge-or", title="shouldScavenge uses || for the same-generation occupancy test",
         bug="novel", component="scavenging", expected="changes behaviour",
         reason="judged against the spec, a valid policy: whether an unforced scavenge takes a chunk that was "
         "dense last generation is pacing (shouldScavenge), which may release more or less than asked "
         "(freedom scavenge_pacing); a forced scavenge is unchanged. Any divergence breaks with --strict",
         check="scavenge differential (chunks recently dense are scavenged); the spec accepts it",
         file="mgcscavenge.go",
         old="\t\treturn sc.inUse < scavChunkHiOccPages && sc.lastInUse < scavChunkHiOccPages\n",
         new="\t\treturn sc.inUse < scavChunkHiOccPages || sc.lastInUse < scavChunkHiOccPages\n"),
    # --- benign: behaviour-preserving refactors ----------------------------------------------------
    dict(id="benign-merge-max-as-ifs", kind="benign", title="mergeSummaries: the 3-way max() builtin as if-statements",
         bug="novel", component="merge", expected="no divergence found", check="everything must hold",
         file="mpagealloc.go", old="\t\tmost = max(most, end+si, mi)\n",
         new="\t\tif end+si > most {\n\t\t\tmost = end + si\n\t\t}\n\t\tif mi > most {\n\t\t\tmost = mi\n\t\t}\n"),
    dict(id="benign-find1-rename-local", kind="benign", title="find1: rename the local x to word",
         bug="novel", component="bit searches", expected="no divergence found", check="everything must hold",
         file="mpallocbits.go",
         old="\t\tx := b[i]\n\t\tif ^x == 0 {\n\t\t\tcontinue\n\t\t}\n\t\treturn i*64 + uint(sys.TrailingZeros64(^x))\n",
         new="\t\tword := b[i]\n\t\tif ^word == 0 {\n\t\t\tcontinue\n\t\t}\n\t\treturn i*64 + uint(sys.TrailingZeros64(^word))\n"),
    dict(id="benign-pagecache-reorder", kind="benign", title="pageCache.alloc: clear the scav bit before the cache bit",
         bug="novel", component="page cache", expected="no divergence found", check="everything must hold",
         file="mpagecache.go",
         old="\t\tc.cache &^= 1 << i // set bit to mark in-use\n\t\tc.scav &^= 1 << i  // clear bit to mark unscavenged\n",
         new="\t\tc.scav &^= 1 << i  // clear bit to mark unscavenged\n\t\tc.cache &^= 1 << i // set bit to mark in-use\n"),
    dict(id="benign-popcnt-range-loop", kind="benign", title="popcntRange: the middle-word loop as a range over a slice",
         bug="novel", component="scavenging", expected="no divergence found", check="everything must hold",
         file="mpallocbits.go",
         old="\tfor k := i/64 + 1; k < j/64; k++ {\n\t\ts += uint(sys.OnesCount64(b[k]))\n\t}\n",
         new="\tfor _, w := range b[i/64+1 : j/64] {\n\t\ts += uint(sys.OnesCount64(w))\n\t}\n"),
    dict(id="benign-range-size-lessequal", kind="benign", title="addrRange.size: !base.lessThan(limit) as limit.lessEqual(base)",
         bug="novel", component="address ranges", expected="no divergence found", check="everything must hold",
         file="mranges.go", old="\tif !a.base.lessThan(a.limit) {\n", new="\tif a.limit.lessEqual(a.base) {\n"),
    dict(id="benign-findsucc-midpoint", kind="benign", title="findSucc: midpoint as bot + (top-bot)/2",
         bug="novel", component="address ranges", expected="no divergence found", check="everything must hold",
         file="mranges.go", old="\t\ti := int(uint(bot+top) >> 1)\n", new="\t\ti := bot + (top-bot)/2\n"),
    dict(id="benign-summarize-max-as-if", kind="benign", title="summarize: the in-loop max() as an if-statement",
         bug="novel", component="summarize", expected="no divergence found", check="everything must hold",
         file="mpallocbits.go", old="\t\tmost = max(most, cur)\n\t\t// Final region",
         new="\t\tif cur > most {\n\t\t\tmost = cur\n\t\t}\n\t\t// Final region"),
    # --- valid policy changes: every obligation of spec/obligations.py holds, the choices differ --------
    dict(id="policy-alloc-lazy-search-addr", kind="policy", title="alloc leaves searchAddr where it was",
         bug="policy", component="alloc/free/searchAddr", expected="changes behaviour",
         check="freedom search_addr_hint: below_search_addr_allocated still holds (nothing below the old "
         "searchAddr is freed by an alloc); the first fit is unchanged, the search starts lower",
         file="mpagealloc.go",
         old="\tif p.searchAddr.lessThan(searchAddr) {\n\t\tp.searchAddr = searchAddr\n\t}\n\treturn addr, scav\n",
         new="\t_ = searchAddr // the candidate is not taken: searchAddr stays where it was\n\treturn addr, scav\n"),
    dict(id="policy-cache-first-run", kind="policy", title="allocToCache takes only the block's first run of free pages",
         bug="policy", component="page cache", expected="changes behaviour",
         check="freedom cache_window: the cache owns free pages of a 64-page-aligned block, their scav bits "
         "carried (masked to the cache), searchAddr set to the run's last page so nothing free lies below it",
         file="mpagecache.go",
         old="\t// Set the page bits as allocated and clear the scavenged bits, but\n",
         new="\t// Policy: only the first run of free pages of the block goes to the cache.\n"
             "\tc.cache &^= c.cache + (c.cache & -c.cache)\n\tc.scav &= c.cache\n\n"
             "\t// Set the page bits as allocated and clear the scavenged bits, but\n",
         also=("\tp.searchAddr = offAddr{c.base + pageSize*(pageCachePages-1)}\n",
               "\tp.searchAddr = offAddr{c.base + pageSize*uintptr(sys.Len64(c.cache)-1)}\n")),
    dict(id="policy-scavenge-batch-16", kind="policy", title="scavengeOne releases at least 16 pages at once",
         bug="policy", component="scavenging", expected="changes behaviour",
         check="freedom scavenge_choice: more released than asked (fewer sysUnused calls), only free pages, "
         "the count exact",
         file="mgcscavenge.go",
         old="\tif max%pageSize != 0 {\n\t\tmaxPages++\n\t}\n",
         new="\tif max%pageSize != 0 {\n\t\tmaxPages++\n\t}\n\tif maxPages < 16 {\n\t\tmaxPages = 16\n\t}\n"),
    dict(id="policy-scavenge-bg-sparse-only", kind="policy",
         title="the background scavenger leaves chunks at least half full alone",
         bug="policy", component="scavenging", expected="changes behaviour",
         check="freedom scavenge_pacing: an unforced scavenge may release less; a forced one is unchanged",
         file="mgcscavenge.go",
         old="\treturn sc.inUse < scavChunkHiOccPages\n}\n",
         new="\treturn sc.inUse < scavChunkHiOccPages/2\n}\n"),
]


def patch_name(i: int, m: dict) -> str:
    return f"{i + 1:02d}-{m['id']}.patch"


def mutated_text(goroot: Path, m: dict) -> str:
    """Returns the runtime file's text with m's edit applied; raises ValueError unless old occurs once."""
    text = (goroot / (R + m["file"])).read_text()
    for old, new in [(m["old"], m["new"])] + ([m["also"]] if "also" in m else []):
        if text.count(old) != 1:
            raise ValueError(f"{m['id']}: the text to replace occurs {text.count(old)} times in {m['file']}")
        text = text.replace(old, new)
    return text


def _toml_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def write_manifest(baseline: dict, compiled: dict | None = None, palloc: dict | None = None,
                   tv: dict | None = None) -> str:
    """Returns manifest.toml's text: the corpus metadata plus the measured columns.

    compiled: compile.json (package runtime compiled with the patch); palloc: id -> measured
    `palloc mutants` row (goref/mutants/palloc-results.json).
    """
    compiled, palloc, tv = compiled or {}, palloc or {}, tv or {}
    out = [
        "# The mutant corpus: generated by goref/mutants/generate.py (edit that, not this).",
        "# expected: breaks | equivalent (with a reason) | no divergence found (benign refactors) |",
        "# changes behaviour (a valid policy); expected_on: where a GOARCH differs (arenaBaseOffset is 0 on 386).",
        "# runtime_tests: measured by `palloc mutants baseline` -- caught | missed | not compiled | not run;",
        "# (for a benign patch `missed` means the runtime's tests pass, as they should);",
        "# runtime_tests_failed: the runtime's own page-allocator tests that failed or crashed.",
        "# compiles: yes | no | not checked; palloc_verdict / palloc_caught_by / palloc_decided_by: measured by `palloc mutants`",
        "# (absent where not yet measured).",
        "# tv_verdict / tv_functions: translation validation alone (`palloc mutants prove`, amd64):",
        "# refuted (a counterexample confirmed in the patched runtime) | proved equivalent | undecided;",
        "# per changed function its verdict (tv-results.json).",
        f'go_version = "{GO_VERSION}"',
        f"runtime_test_regex = {_toml_str(baseline.get('regex', ''))}",
        "",
    ]
    for i, m in enumerate(MUTANTS):
        b = baseline.get("results", {}).get(m["id"], {})
        out.append("[[mutant]]")
        fields = [
            ("id", m["id"]), ("patch", patch_name(i, m)), ("kind", m.get("kind", "mutant")),
            ("title", m["title"]), ("bug", m["bug"]), ("component", m["component"]),
            ("file", R + m["file"]), ("expected", m["expected"]),
        ]
        if "reason" in m:
            fields.append(("reason", m["reason"]))
        fields.append(("check", m["check"]))
        for k, v in fields:
            out.append(f"{k} = {_toml_str(v)}")
        if m.get("expected_on"):
            out.append("expected_on = { " + ", ".join(f"{_toml_str(g)} = {_toml_str(v)}" for g, v in m["expected_on"].items()) + " }")
        c = compiled.get(m["id"])
        comp = b.get("compiles") or ({True: "yes", False: "no"}[c["ok"]] if c else "not checked")
        out.append(f"compiles = {_toml_str(comp)}")
        out.append(f"runtime_tests = {_toml_str(b.get('verdict', 'not run'))}")
        out.append(f"runtime_tests_failed = [{', '.join(_toml_str(t) for t in b.get('failed', []))}]")
        pm = palloc.get(m["id"])
        if pm:
            out.append(f"palloc_verdict = {_toml_str(pm['verdict'])}")
            out.append(f"palloc_caught_by = [{', '.join(_toml_str(t) for t in pm.get('caught_by', []))}]")
            if pm.get("decided_by") not in (None, "-"):  # the spec obligation broken, or the freedoms a behaviour change kept to
                out.append(f"palloc_decided_by = {_toml_str(pm['decided_by'])}")
        tm = tv.get(m["id"])
        if tm:
            out.append(f"tv_verdict = {_toml_str(tm['verdict'])}")
            fs = [f"{f['name']}: {f['verdict']}" + (" (confirmed)" if f.get("confirmed") else "") for f in tm["functions"]]
            out.append(f"tv_functions = [{', '.join(_toml_str(x) for x in fs)}]")
        out.append("")
    return "\n".join(out)


def generate(goroot: Path, folder: Path = HERE) -> int:
    """Writes every mutant's patch against the pristine runtime in goroot, and manifest.toml with
    the measured columns found beside them, into folder; returns the number of patches.

    Each file is written whole or not at all (write_atomic); a patch no entry makes any more is
    removed only after every new one was written."""
    ids = [m["id"] for m in MUTANTS]
    if len(ids) != len(set(ids)):
        raise PallocError("duplicate mutant ids in goref/mutants/generate.py")
    try:
        texts = {patch_name(i, m): unified_diff(goroot, R + m["file"], mutated_text(goroot, m)) for i, m in enumerate(MUTANTS)}
    except (OSError, ValueError) as e:
        raise PallocError(f"cannot make the corpus from {goroot} (a pristine {GO_VERSION} tree is needed): {e}") from None
    load = lambda name: json.loads((folder / name).read_text()) if (folder / name).exists() else {}  # noqa: E731
    palloc = {r["id"]: r for r in load("palloc-results.json").get("results", [])}
    tvr = load("tv-results.json")
    tv = {r["id"]: r for r in (tvr if isinstance(tvr, list) else [])}
    manifest = write_manifest(load("baseline.json"), load("compile.json"), palloc, tv)
    for name, text in texts.items():
        write_atomic(folder / name, text)
    for old in folder.glob("*.patch"):
        if old.name not in texts:
            old.unlink()
    write_atomic(folder / "manifest.toml", manifest)
    return len(texts)
