// Large objects near the chunk size (4 MiB): spans of hundreds of pages, some straddling chunks.
package main

import (
	"fmt"
	"os"
	"strconv"
)

// The size argument is read as every workload reads it, on purpose: each workload is a main
// package built and run on its own, with nothing shared.
func main() {
	rounds := 60
	if len(os.Args) > 1 {
		rounds, _ = strconv.Atoi(os.Args[1])
	}
	const chunk = 4 << 20
	sizes := []int{chunk - 8192, chunk, chunk + 8192, chunk / 2, 3 * chunk / 2, chunk - 1, 2*chunk + 4096, 100 << 10}
	var live [][]byte
	sum := 0
	for r := 0; r < rounds; r++ {
		for i, s := range sizes {
			b := make([]byte, s+(r%5)*8192)
			b[len(b)-1] = byte(i)
			live = append(live, b)
		}
		if len(live) > 24 {
			for _, b := range live[:16] {
				sum += int(b[len(b)-1])
			}
			live = append([][]byte(nil), live[16:]...)
		}
	}
	fmt.Println("large objects done", sum, len(live))
}
