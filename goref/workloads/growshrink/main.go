// Grow then shrink: the heap grows to about 1 GiB, most of it dies, and the scavenger returns it
// (in the background and by debug.FreeOSMemory); then it grows again into the scavenged memory.
package main

import (
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"time"
)

func main() {
	mib := 1024
	if len(os.Args) > 1 {
		mib, _ = strconv.Atoi(os.Args[1])
	}
	var live [][]byte
	for i := 0; i < mib*4; i++ { // 256 KiB objects
		live = append(live, make([]byte, 256<<10))
	}
	kept := live[:len(live)/10]
	live = nil
	for r := 0; r < 3; r++ {
		var tmp [][]byte
		for i := 0; i < mib; i++ {
			tmp = append(tmp, make([]byte, 32<<10+i%4096))
		}
		tmp = nil
		time.Sleep(200 * time.Millisecond) // the background scavenger's turn
	}
	debug.FreeOSMemory()
	var again [][]byte
	for i := 0; i < mib; i++ {
		again = append(again, make([]byte, 64<<10))
	}
	fmt.Println("grow-shrink done", len(kept), len(again))
}
