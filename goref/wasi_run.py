"""Run a GOOS=wasip1 helper under wasmtime (the `wasmtime` package): `python -m palloc.goref.wasi_run HELPER ARGS...`.

The helper's protocol is JSON lines on stdin and stdout, so the module is given this process's
own stdin, stdout and stderr (WASI fd_read blocks until a line arrives, as a native read does),
its arguments and its environment; its exit code is the module's. Started like every helper,
through goref/procs.py, so it dies with palloc. WASI has no signals: a hung helper is killed
without the runtime's stacks (goref/driver.py).

Mirrors no Go file (src/runtime's wasip1 port is what runs inside).
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m palloc.goref.wasi_run HELPER.wasm [ARGS...]", file=sys.stderr)
        return 2
    try:
        import wasmtime
    except ImportError:
        print("the wasmtime package is not installed: pip install 'palloc[wasm]'", file=sys.stderr)
        return 2
    # Compiling the 15 MB helper takes Cranelift a minute on a busy machine: wasmtime's own cache
    # (keyed by the module's contents and the compiler's settings) makes every later start fast.
    config = wasmtime.Config()
    try:
        config.cache = True
    except Exception:  # noqa: BLE001 - no cache directory: compile every time, slowly
        pass
    engine = wasmtime.Engine(config)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    store = wasmtime.Store(engine)
    wasi = wasmtime.WasiConfig()
    wasi.argv = argv
    wasi.env = list(os.environ.items())
    wasi.inherit_stdin()
    wasi.inherit_stdout()
    wasi.inherit_stderr()
    # The helper's TMPDIR (its private folder): the runtime's tests may create files there.
    tmp = os.environ.get("TMPDIR")
    if tmp and os.path.isdir(tmp):
        wasi.preopen_dir(tmp, tmp)
    store.set_wasi(wasi)
    module = wasmtime.Module.from_file(engine, argv[0])
    instance = linker.instantiate(store, module)
    try:
        instance.exports(store)["_start"](store)
    except wasmtime.ExitTrap as e:
        return e.code
    except wasmtime.Trap as e:  # a wasm trap (unreachable, out of bounds): the runtime died
        print(f"wasm trap: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
