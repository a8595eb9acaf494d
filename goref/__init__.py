"""palloc.goref: the Go helper built from the real runtime, its driver, and the differential fuzzer."""
