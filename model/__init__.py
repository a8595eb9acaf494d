"""palloc.model: the executable reference model of the Go runtime's page allocator (Go 1.27)."""
