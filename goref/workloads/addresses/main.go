// Addresses: a deterministic sequence of large allocations and frees (explicit GCs), printing the
// address of every object, so that a build with the recording overlay and one without can be
// compared address by address (run with GOMAXPROCS=1 GOGC=off).
package main

import (
	"fmt"
	"os"
	"runtime"
	"unsafe"
)

var sink [][]byte

func main() {
	for r := 0; r < 40; r++ {
		for i := 0; i < 16; i++ {
			b := make([]byte, (40+((r*16+i)*37)%600)<<10)
			fmt.Printf("%x\n", uintptr(unsafe.Pointer(&b[0])))
			if i%3 != 0 {
				sink = append(sink, b)
			}
		}
		if r%4 == 3 && len(os.Args) < 2 { // "nogc": no frees, so no scavenger and no timing
			sink = sink[len(sink)/2:]
			runtime.GC()
		}
	}
}
