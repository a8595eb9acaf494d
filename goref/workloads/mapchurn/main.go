// Map churn: maps of growing and shrinking size, rebuilt and dropped, values of mixed sizes.
package main

import (
	"fmt"
	"os"
	"strconv"
)

// The size argument is read as every workload reads it, on purpose: each workload is a main
// package built and run on its own, with nothing shared.
func main() {
	rounds := 40
	if len(os.Args) > 1 {
		rounds, _ = strconv.Atoi(os.Args[1])
	}
	keep := map[int][]byte{}
	total := 0
	for r := 0; r < rounds; r++ {
		m := make(map[string][]byte)
		n := 20000 + (r%7)*15000
		for i := 0; i < n; i++ {
			m[strconv.Itoa(i*r)] = make([]byte, 16+(i*r)%2000)
		}
		for k, v := range m {
			if len(v)%97 == 0 {
				keep[len(keep)] = v
			}
			delete(m, k)
			total += len(v)
		}
		if len(keep) > 5000 {
			keep = map[int][]byte{}
		}
	}
	fmt.Println("churned", total, "bytes, kept", len(keep))
}
