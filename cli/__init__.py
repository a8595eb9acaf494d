"""palloc.cli: the `palloc` command. Each verb is a module here with a register(subparsers)."""
