// Crashes: allocates, then dies of a panic, so it never reaches its exit hooks.
package main

import "fmt"

var sink [][]byte

func main() {
	for i := 0; i < 100; i++ {
		sink = append(sink, make([]byte, 100<<10))
	}
	fmt.Println(len(sink))
	panic("on purpose")
}
