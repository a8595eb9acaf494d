"""palloc.cli: the `palloc` command. Each verb is a module here defining HELP, DESCRIPTION,
arguments(p) and run(args); cli/main.py builds their parsers."""
