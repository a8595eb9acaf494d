// Binary trees (the benchmarks game's): many short-lived small objects, a GC-heavy heap.
package main

import (
	"fmt"
	"os"
	"strconv"
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
	for d := 4; d <= depth; d += 2 {
		iters := 1 << (depth - d + 4)
		sum := 0
		for i := 0; i < iters; i++ {
			sum += build(d).check()
		}
		fmt.Printf("%d trees of depth %d check: %d\n", iters, d, sum)
	}
	fmt.Printf("long lived tree of depth %d check: %d\n", depth, long.check())
}
