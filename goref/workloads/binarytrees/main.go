// Binary trees (the benchmarks game's): many short-lived small objects, a GC-heavy heap.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
)

type node struct{ l, r *node }

func build(d int) *node {
	if d == 0 {
		return &node{}
	}
	return &node{build(d - 1), build(d - 1)}
}

func (n *node) check() int {
	if n.l == nil {
		return 1
	}
	return 1 + n.l.check() + n.r.check()
}

func main() {
	depth := 16
	if len(os.Args) > 1 {
		depth, _ = strconv.Atoi(os.Args[1])
	}
	long := build(depth)
	// The depths run in parallel, as in the benchmarks game: every P allocates (and has a page
	// cache, which GC flushes while the P is idle); then GOMAXPROCS(1) flushes the others' caches.
	sums := make([]int, depth+1)
	var wg sync.WaitGroup
	for d := 4; d <= depth; d += 2 {
		wg.Add(1)
		go func(d int) {
			defer wg.Done()
			for i := 0; i < 1<<(depth-d+4); i++ {
				sums[d] += build(d).check()
			}
		}(d)
	}
	wg.Wait()
	runtime.GOMAXPROCS(1)
	for d := 4; d <= depth; d += 2 {
		fmt.Printf("%d trees of depth %d check: %d\n", 1<<(depth-d+4), d, sums[d])
	}
	fmt.Printf("long lived tree of depth %d check: %d\n", depth, long.check())
}
