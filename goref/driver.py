"""Drive the Go helper: a persistent runtime test binary that answers batched JSON requests.

GoHelper starts `runtime.test -test.run=^TestPallocServer$` with PALLOC_SERVER=1 and speaks the
protocol of goref/README.md: one request line `{"id": n, "ops": [...]}`, one response line
`{"id": n, "results": [...]}`. `call(ops)` returns exactly one result per operation, as a dict
with a "kind":

  "ok"         the operation ran; its fields follow ("addr", "scav", ...)
  "error"      the helper refused the operation (bad arguments, no such allocator); it lives on
  "go-panic"   the operation panicked in Go; recovered, the helper lives on (unless it died)
  "go-throw"   the runtime called throw: "msg" is its message, "stack" the first frames
  "go-fault"   the runtime faulted (SIGSEGV/SIGBUS): "msg", "addr" when known, "stack"
  "go-hang"    no answer within the watchdog timeout; the helper was killed
  "go-exit"    the helper exited for another reason ("exit_code", "stderr"; "signal" when a
               signal from outside ended it: SIGKILL from the OOM killer or a user)
  "skipped"    not run, because an earlier operation of the batch (or an earlier batch still
               pending, see submit) killed the helper

Results of the operations before a death are kept: the helper flushes each result as soon as it
is known. After a death the helper is restarted lazily by the next call, with no allocators
(`generation` counts the processes started, so a caller can tell its handles are gone).

Blame. Batches sent with submit() and not yet collected are the helper's pending work, answered
in order. A helper that dies is never restarted while one of them is pending: each earlier batch
is still answered from what the dead process wrote, the batch it died in gets the death (with the
runtime's `fatal error:` line, its stack, and `heap_step`: the index in the batch of the last
heap it had started, from the helper's "palloc-heap" marks on stderr), and every later one
"skipped". A hang (no answer within the timeout) is ended with SIGQUIT first, so the runtime
prints where it was looping, then its whole process group is killed.

Timeouts scale with a calibration: `timeout_for(nops)` is the largest of the floor given at start
(`timeout`), 50 times the time the runtime took to answer its first ping (its start-up, measured
on every start: about 20 ms natively, 0.3-0.8 s under qemu-user, Node.js or wasmtime; capped at
ten floors, since a start includes a JIT's compile), and 50 times the
slowest per-operation time seen in answered batches, so a helper that runs 10-50x slower (an
emulator) is not taken for a hung one. The first ping itself may take START_SECONDS times the
way of running's allowance (goref/targets.py START_ALLOWANCE).

Emulated helpers (goref/targets.py): the process started is the launcher (qemu-<cpu>, or node
with the toolchain's wasm_exec_node.js) with the helper binary as its argument, through procs.popen
like a native one. qemu-user passes SIGQUIT on to the guest, so a hang's stacks are printed as
natively; js/wasm has no signals, so a hang under Node.js is killed with no stack.

Integers: requests may hold any Python int (ints of 2^53 or more are sent as hex strings), and
every "0x..." string of a response is returned as an int.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any, Iterable

from palloc.goref import procs
from palloc.spec.errors import PallocError

PROTOCOL = 1  # palloc_server_test.go's pallocSrvProtocol
DEATH_KINDS = ("go-throw", "go-fault", "go-panic", "go-hang", "go-exit")
TEXT_KEYS = frozenset({"msg", "stderr", "stack", "detail", "signal", "version", "goos", "goarch", "kind", "op"})
_HEX = re.compile(r"^0x[0-9a-f]+$")
_SAFE_INT = 1 << 53
# Lines of a Go traceback that name a function: "runtime.throw({0x5b0, 0x1b})" or "main.f(...)".
_FRAME = re.compile(r"^([\w./*()\[\]-]+(?:\.[\w*()\[\]-]+)+)\(.*\)$")
_FILELINE = re.compile(r"^\t(\S+:\d+)")
# The helper's mark on stderr as its "steps" operation starts a heap (its index in the batch).
_HEAP_MARK = re.compile(r"^palloc-heap (\d+)$", re.M)
_MARK_LINES = re.compile(r"^palloc-(?:heap \d+|batch)\n", re.M)
# Slack over the slowest per-operation time seen before a batch counts as hung.
HANG_SLACK = 50.0
# How fast the slowest per-operation time seen is forgotten, per answered batch.
CALIBRATION_DECAY = 0.95
# The watchdog's default floor: a batch of a thousand operations takes about 0.1 s natively.
HANG_SECONDS = 10.0
# How long a starting runtime may take to answer its first ping (an emulator starts slowly).
START_SECONDS = 30.0


class HelperStartError(PallocError):
    """The helper's runtime died before answering its ping; `death` is the structured result.

    For the unpatched toolchain this means a broken build; for a patched runtime it is the
    patch (verify-change turns it into a `breaks` verdict, also when it happens on a restart).
    """

    def __init__(self, msg: str, death: dict):
        super().__init__(msg)
        self.death = death


def encode(v: Any) -> Any:
    """Returns v with every int that a JSON number cannot hold exactly turned into a hex string."""
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int):
        return v if -_SAFE_INT < v < _SAFE_INT else hex(v)
    if isinstance(v, dict):
        return {k: encode(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [encode(x) for x in v]
    return v


def decode(v: Any, key: str | None = None) -> Any:
    """Returns v with every "0x..." string (outside the text fields) turned into an int."""
    if isinstance(v, str):
        return int(v, 16) if key not in TEXT_KEYS and _HEX.match(v) else v
    if isinstance(v, dict):
        return {k: decode(x, k) for k, x in v.items()}
    if isinstance(v, list):
        return [decode(x, key) for x in v]
    return v


_CRASH_HEADS = (
    ("go-throw", re.compile(r"^fatal error: (.*)$", re.M)),
    ("go-panic", re.compile(r"^panic: (.*)$", re.M)),
    # A signal with no goroutine to blame (on the system stack) prints "SIGSEGV: segmentation
    # violation" then "PC=... sigcode=... addr=0x...", and no "fatal error" line.
    ("go-fault", re.compile(r"^(SIG[A-Z]+: .*)$", re.M)),
)


def parse_crash(stderr: str) -> dict[str, Any]:
    """Returns the death result a Go crash report describes: kind, msg, stack head, fault addr.

    Whichever comes first decides: "fatal error: <msg>" (a throw), "panic: <msg>" (an
    unrecovered panic) or a bare "SIGSEGV: ..." line (a fault on the system stack). A throw that
    reports a signal ("unexpected fault address", "[signal SIGSEGV ...]", "unexpected signal")
    is a fault. Anything else is go-exit.
    """
    found = [(m.start(), kind, m.group(1)) for kind, rx in _CRASH_HEADS if (m := rx.search(stderr))]
    pos, kind, msg = min(found) if found else (0, "go-exit", "")
    res: dict[str, Any] = {"kind": kind, "msg": msg}
    if kind == "go-fault":
        res["signal"] = msg.split(":")[0]
        m = re.search(r"^PC=.*?addr=(0x[0-9a-f]+)", stderr[pos:], re.M)
        if m:
            res["addr"] = int(m.group(1), 16)
    else:
        sig = re.search(r"\[signal (SIG\w+)[^\]]*?addr=(0x[0-9a-f]+)", stderr)
        if "unexpected fault address" in stderr or sig or "unexpected signal" in msg:
            res["kind"] = "go-fault"
            if sig:
                res["signal"], res["addr"] = sig.group(1), int(sig.group(2), 16)
            elif m := re.search(r"unexpected fault address (0x[0-9a-f]+)", stderr):
                res["addr"] = int(m.group(1), 16)
    lines = stderr.splitlines()
    start = stderr[:pos].count("\n")
    # "runtime: ..." lines printed just before a throw carry the values it complained about.
    detail = [l for l in lines[max(0, start - 8):start] if l.startswith("runtime: ")]
    if detail:
        res["detail"] = detail
    stack: list[str] = []
    for i in range(start, len(lines)):
        m = _FRAME.match(lines[i])
        if m:
            where = _FILELINE.match(lines[i + 1]) if i + 1 < len(lines) else None
            stack.append(m.group(1) + (" " + Path(where.group(1)).name if where else ""))
            if len(stack) >= 12:
                break
    res["stack"] = stack
    return res


# Frames of a thread with nothing to do: a hang is never there.
_IDLE_FRAMES = ("runtime.futex", "runtime.usleep", "runtime.osyield", "runtime.nanosleep", "runtime.epollwait",
                "runtime.netpoll", "runtime.sigtramp", "runtime.sigreturn", "runtime.rt_sigaction", "runtime.gopark",
                "runtime.mPark", "runtime.notesleep", "runtime.semasleep", "runtime.raise", "runtime.systemstack_switch")


def hang_stack(stderr: str) -> list[str]:
    """Returns where a hung Go runtime was looping: the stack of the first thread that was busy
    when SIGQUIT (with GOTRACEBACK=crash, every thread prints its own) or a test's timeout ended it.
    """
    at = max(stderr.find("SIGQUIT: quit"), stderr.find("panic: test timed out"))
    sections = re.split(r"\n-----\n", stderr[max(at, 0):])
    for sec in sections:
        for block in re.split(r"\n(?=goroutine \d+ )", sec):
            if "[running]" not in block.split("\n", 1)[0] and "[idle]" not in block.split("\n", 1)[0]:
                continue
            stack = parse_crash("\n" + block.split("\n", 1)[-1]).get("stack", [])
            if stack and not stack[0].startswith(_IDLE_FRAMES) and not stack[0].startswith("testing."):
                return stack
    return []


class _Process:
    """One running helper process with its stdout buffer, stderr file and working folder."""

    def __init__(self, binary: Path, env: dict[str, str], launcher: list[str] | None = None, args=()):
        # Its own folder (and TMPDIR), removed with it, so nothing it writes outlives it.
        self.cwd = procs.tempdir("helper")
        self.stderr = tempfile.TemporaryFile(prefix="palloc-helper-stderr-")
        try:
            # Its own session (procs.popen): a Ctrl-C at the terminal stops palloc (which keeps
            # its results and ends the helper by closing its stdin), never the helper under a
            # running heap; and it dies with palloc, whatever ends palloc.
            self.proc = procs.popen(
                [*(launcher or []), str(binary), "-test.run=^TestPallocServer$", "-test.v=false", "-test.timeout=0",
                 "-test.count=1", *args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self.stderr,
                env={**env, "TMPDIR": self.cwd},
                cwd=self.cwd,
            )
        except BaseException:
            self.stderr.close()
            shutil.rmtree(self.cwd, ignore_errors=True)
            raise
        self.fd = self.proc.stdout.fileno()
        os.set_blocking(self.fd, False)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.fd, selectors.EVENT_READ)
        self.buf = bytearray()
        self.send_hung = False  # a write to stdin made no progress within the timeout
        # Writes never block: while a batch is written, the answers to earlier ones are read
        # (a helper blocked on its full stdout pipe would otherwise never read its stdin).
        self.wfd = self.proc.stdin.fileno()
        os.set_blocking(self.wfd, False)
        # Room for a whole batch (about 100 KB) in the pipe: a batch sent while the helper still
        # runs the one before is written at once, not as fast as the helper gets to read it.
        for fd in (self.wfd, self.fd):
            try:
                fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 1 << 20)
            except (AttributeError, OSError):  # not Linux, or above /proc/sys/fs/pipe-max-size
                pass
        self.wsel = selectors.DefaultSelector()
        self.wsel.register(self.fd, selectors.EVENT_READ)
        self.wsel.register(self.wfd, selectors.EVENT_WRITE)

    def write(self, data: bytes, timeout: float) -> None:
        """Writes data to the helper's stdin, reading its stdout into buf meanwhile; sets send_hung
        when it stops reading for timeout. A helper that has exited is left to the next read of its
        answer, which meets the end of its stdout."""
        view = memoryview(data)
        deadline = time.monotonic() + timeout
        while view:
            try:
                view = view[os.write(self.wfd, view):]
                continue
            except BlockingIOError:
                pass
            except OSError:  # BrokenPipeError: it has exited
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.send_hung = True
                return
            for key, _ in self.wsel.select(min(remaining, 1.0)):
                if key.fd != self.fd:
                    continue
                try:
                    chunk = os.read(self.fd, 1 << 20)
                except BlockingIOError:
                    continue
                if not chunk:  # its stdout closed: it has exited
                    return
                self.buf += chunk

    def stderr_text(self, tail: int = 1 << 18) -> str:
        """Returns the last `tail` bytes of what the helper wrote on stderr."""
        self.stderr.seek(0, os.SEEK_END)
        self.stderr.seek(max(0, self.stderr.tell() - tail))
        return self.stderr.read().decode("utf-8", "replace")

    def quit(self, wait: float = 3.0) -> None:
        """Asks a hung runtime for its goroutines' stacks (SIGQUIT makes Go print them and exit)."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGQUIT)
                self.proc.wait(timeout=wait)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass

    def kill(self) -> None:
        procs.kill_group(self.proc)

    def close(self) -> None:
        for sel in (self.sel, self.wsel):
            try:
                sel.close()
            except Exception:
                pass
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except Exception:
                pass
        self.stderr.close()
        shutil.rmtree(self.cwd, ignore_errors=True)


class GoHelper:
    """A persistent Go helper process; use as a context manager, or call close().

    binary: a built helper (default: build_helper(toolchain, goarch, extra_overlay)).
    goarch: its goref/targets.py name (default: the host's): how it is run (natively, qemu, node).
    timeout: the watchdog's floor, in seconds, for one batch (see timeout_for).
    launcher: the command the binary is run under, instead of the target's (tests slow a helper
    down with one).
    args: more flags for the test binary (-test.gocoverdir for a coverage build).
    """

    def __init__(
        self,
        binary: str | os.PathLike | None = None,
        *,
        toolchain=None,
        goarch: str | None = None,
        extra_overlay: dict[str, str] | None = None,
        timeout: float = HANG_SECONDS,
        env: dict[str, str] | None = None,
        launcher: list[str] | None = None,
        args: list[str] | tuple = (),
    ):
        from palloc.goref import targets

        # Before a build: a helper that cannot run here is one line saying what to install.
        self.target = targets.target(goarch or targets.host_goarch())
        goroot = toolchain.goroot if toolchain is not None else None
        emulated = launcher is not None or self.target.runner != "native"
        if launcher is None:  # raises PallocError when the emulator is missing
            launcher = self.target.command("", goroot)[:-1]
        if binary is None:
            from palloc.goref.build import build_helper

            binary = build_helper(toolchain, goarch, extra_overlay)
        self.binary = Path(binary)
        if not self.binary.is_file():
            raise PallocError(f"Go helper {self.binary} does not exist; build it with `palloc goref build`")
        from palloc.goref.build import pin_helper

        # A private link, so that cache eviction never takes the binary from under a restart.
        self._exec = pin_helper(self.binary)
        self.timeout = timeout
        self._launcher = list(launcher)
        self._args = list(args)
        self.start_allowance = max(targets.START_ALLOWANCE.get(self.target.runner, 1.0), 4.0 if emulated else 1.0)
        self.start_seconds = 0.0  # how long the last start took to answer its first ping
        self._env = dict(os.environ)
        # crash: a hang's SIGQUIT makes every thread print its stack, the looping one included
        # (with less, a goroutine running on another thread has its "stack unavailable").
        self._env.update({"PALLOC_SERVER": "1", "GOTRACEBACK": "crash", "GODEBUG": ""})
        self._env.update(env or {})
        self._proc: _Process | None = None
        self._next_id = 0
        self._pending: set[int] = set()  # ids submitted to the current process, not yet collected
        self._unsent = 0  # tickets not sent (the process had died), not yet collected
        self.per_op_seconds = 0.0  # the slowest per-operation time of an answered batch
        self.generation = 0  # processes started so far
        self.deaths: list[dict[str, Any]] = []  # every death result, in order
        # A helper nobody closed is still ended, and its folder removed, when it is collected or
        # at exit.
        self._finalizer = weakref.finalize(self, GoHelper._end, [None])

    # --- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> "GoHelper":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        return self._proc.proc.pid if self._proc else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.proc.poll() is None

    @staticmethod
    def _end(box: list) -> None:
        p = box[0]
        box[0] = None
        if p is not None:
            p.kill()
            p.close()

    def timeout_for(self, nops: int) -> float:
        """Returns the seconds a batch of nops operations may take before it counts as hung."""
        # The start-up is only a proxy for speed (it includes a JIT's compile, a minute for
        # wasmtime's first): capped at ten floors; the batches' own calibration is not.
        from_start = min(HANG_SLACK * self.start_seconds, 10 * self.timeout)
        return max(self.timeout, from_start, HANG_SLACK * self.per_op_seconds * max(nops, 1))

    def start(self) -> None:
        """Starts the helper if it is not running (and checks it answers a ping)."""
        if self.alive:
            return
        self._discard()
        if not self._exec.exists():  # unpinned by close(): pin again
            from palloc.goref.build import pin_helper

            self._exec = pin_helper(self.binary)
        try:
            self._proc = _Process(self._exec, self._env, self._launcher, self._args)
        except OSError as e:
            raise PallocError(f"cannot start the Go helper {self.binary} ({e}); rebuild it with `palloc goref build --force`") from None
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, GoHelper._end, [self._proc])
        self._pending.clear()
        self._unsent = 0
        self.generation += 1
        t0 = time.monotonic()
        r = self._batch([{"op": "ping"}], max(self.timeout, START_SECONDS * self.start_allowance))[0]
        if r.get("kind") == "ok":
            self.start_seconds = max(self.start_seconds, time.monotonic() - t0)
        if r.get("kind") != "ok":
            raise HelperStartError(f"the Go helper {self.binary} did not answer a ping ({r.get('kind')}: {r.get('msg') or r.get('stderr', '')[-200:]}); rebuild it with `palloc goref build --force`", r)
        if r.get("protocol") != PROTOCOL:
            raise PallocError(f"the Go helper {self.binary} speaks protocol {r.get('protocol')}, not {PROTOCOL}; rebuild it with `palloc goref build --force`")
        self.info = r

    def restart(self) -> None:
        """Kills the helper (if running) and starts a fresh one with no allocators."""
        self._discard()
        self.start()

    def close(self) -> None:
        """Stops the helper: closes its stdin so it exits cleanly, killing it if it does not."""
        p = self._proc
        self._proc = None
        self._pending.clear()
        if p is not None:
            try:
                p.proc.stdin.close()
                p.proc.wait(timeout=5)
            except Exception:
                pass
            p.kill()  # the group: anything the helper started goes with it
            p.close()
        self._finalizer.detach()
        from palloc.goref.build import unpin_helper

        unpin_helper(self._exec)

    def _discard(self) -> None:
        self._pending.clear()
        self._unsent = 0
        if self._proc is not None:
            self._proc.kill()
            self._proc.close()
            self._proc = None

    # --- calls ---------------------------------------------------------------------------

    def call(self, ops: Iterable[dict[str, Any]], timeout: float | None = None, flush_each: bool = True,
             raw: bool = False) -> list[dict[str, Any]]:
        """Runs a batch of operations; returns one result dict per operation (see the module doc).

        Starts (or restarts, after a death) the helper first if needed. Never raises for what
        the helper does; raises PallocError only if the helper cannot be started. With
        flush_each=False the helper writes the batch's results once, at the end: faster, but a
        death then loses the results before it (they come back as "skipped").
        """
        ops = list(ops)
        if not ops:
            return []
        if not self.alive:
            self.start()
        return self._batch(ops, self.timeout_for(len(ops)) if timeout is None else timeout, flush_each, raw)

    def call1(self, op: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """Runs one operation and returns its result."""
        return self.call([op], timeout)[0]

    def _batch(self, ops: list[dict[str, Any]], timeout: float, flush_each: bool = True, raw: bool = False) -> list[dict[str, Any]]:
        ops_json = "[" + ",".join(json.dumps(encode(o), separators=(",", ":")) for o in ops) + "]"
        t0 = time.monotonic()
        out = self._receive(self._send(ops_json, flush_each), len(ops), timeout, raw)
        self._calibrate(time.monotonic() - t0, len(ops), out)
        return out

    def _calibrate(self, seconds: float, nops: int, out: list[dict[str, Any]]) -> None:
        if nops >= 8 and out and out[-1].get("kind") not in DEATH_KINDS + ("skipped",):
            self.calibrate(seconds, nops)

    def calibrate(self, seconds: float, nops: int) -> None:
        """Records that nops operations were answered in `seconds` (timeout_for scales with it)."""
        if nops > 0:
            # A decaying maximum: one slow outlier (a pause of the host) stretches the watchdog
            # for a few dozen batches, not for the rest of the campaign.
            self.per_op_seconds = max(self.per_op_seconds * CALIBRATION_DECAY, seconds / nops)

    def submit(self, ops_json: str, flush_each: bool = True) -> tuple[int | None, int]:
        """Sends a batch given as the JSON text of its list of operations (integers of 2^53 or
        more already as hex strings) without waiting; returns a ticket for collect().

        Lets a caller work while the helper runs the batch (the digest lockstep generates its
        next batch meanwhile). Starts the helper first if needed, but never while batches sent
        to a helper that has since died are still to be collected: their answers, and the death
        of the one it died in, are read from the dead process first (the ticket then says "not
        sent", and collect() answers "skipped").
        """
        if self._proc is not None and not self.alive:
            # Dead, and its death not yet told: the batch is not sent, and collect() tells the
            # death in its place (or in the place of the first earlier batch left unanswered).
            self._unsent += 1
            return (None, self.generation)
        if not self.alive:
            self.start()
        rid = self._send(ops_json, flush_each)
        self._pending.add(rid)
        return (rid, self.generation)

    def collect(self, ticket: tuple[int | None, int], nops: int, timeout: float | None = None,
                raw: bool = False) -> list[dict[str, Any]]:
        """Returns the results of a submitted batch of nops operations, as call() would.

        Tickets are collected in the order they were submitted. A batch that was not sent, or
        was sent to a process that has died under an earlier batch, is "skipped".
        """
        rid, gen = ticket
        pending = rid in self._pending
        self._pending.discard(rid)
        if rid is None and gen == self.generation and self._unsent:
            self._unsent -= 1
        p = self._proc
        if p is not None and gen == self.generation and rid is None and not self._pending:
            # Not sent, because the helper had died; no earlier batch was running when it did
            # (each was answered), so this is where its death is told, signal and all.
            return self._died(p, [None] * nops, bytes(p.buf), hang=False)
        if rid is None or not pending or p is None or gen != self.generation:
            return [{"kind": "skipped", "msg": "not run: the helper died under an earlier batch"}] * nops
        return self._receive(rid, nops, self.timeout_for(nops) if timeout is None else timeout, raw)

    def _send(self, ops_json: str, flush_each: bool = True) -> int:
        p = self._proc
        assert p is not None
        self._next_id += 1
        rid = self._next_id
        flush = "" if flush_each else ',"flush_each":false'
        line = f'{{"id":{rid},"ops":{ops_json}{flush}}}\n'.encode()
        p.write(line, self.timeout)
        return rid

    def _receive(self, rid: int, nops: int, timeout: float, raw: bool = False) -> list[dict[str, Any]]:
        p = self._proc
        assert p is not None
        ops = [None] * nops
        deadline = time.monotonic() + timeout
        while True:
            nl = p.buf.find(b"\n")
            if nl >= 0:
                resp = bytes(p.buf[:nl])
                del p.buf[: nl + 1]
                if not resp.startswith(b"{"):
                    continue  # the testing package's own output ("PASS")
                msg = json.loads(resp)
                if "error" in msg and "results" not in msg:
                    raise PallocError(f"the Go helper rejected a request: {msg['error']}")
                if msg.get("id") != rid:
                    continue  # a stale answer
                # raw: leave "0x..." strings alone (the fuzzer converts only what it compares).
                return msg["results"] if raw else [decode(r) for r in msg["results"]]
            if p.send_hung:  # it stopped reading its input: no answer will come
                return self._died(p, ops, bytes(p.buf), hang=True, timeout=self.timeout)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return self._died(p, ops, bytes(p.buf), hang=True, timeout=timeout)
            if not p.sel.select(min(remaining, 1.0)):
                continue
            try:
                chunk = os.read(p.fd, 1 << 20)
            except BlockingIOError:
                continue
            if not chunk:
                return self._died(p, ops, bytes(p.buf), hang=False)
            p.buf += chunk

    def _died(self, p: _Process, ops: list, partial: bytes, hang: bool, timeout: float = 0) -> list[dict[str, Any]]:
        """Returns the results of a batch whose helper died (or hung, and is killed here)."""
        done = _partial_results(partial)
        if hang:
            p.quit()  # a Go runtime answers SIGQUIT with every goroutine's stack: where it loops
            p.kill()
        else:
            try:
                p.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        stderr = p.stderr_text()
        if hang:
            death: dict[str, Any] = {"kind": "go-hang", "msg": f"no answer within {timeout:g}s; helper killed", "stack": []}
            death["stack"] = hang_stack(stderr)
        else:
            death = parse_crash(stderr)
        rc = p.proc.returncode
        death["exit_code"] = rc
        if rc is not None and rc < 0:
            try:
                death["signal"] = death.get("signal") or signal.Signals(-rc).name
            except ValueError:
                pass
        if death["kind"] == "go-exit" and death.get("signal"):
            # No crash report from the runtime: something outside ended it.
            death["msg"] = f"the helper was ended by {death['signal']} from outside (the runtime printed no crash report)"
        marks = _HEAP_MARK.findall(stderr[stderr.rfind("palloc-batch"):] if "palloc-batch" in stderr else stderr)
        if marks:
            death["heap_step"] = int(marks[-1])
        death["stderr"] = _MARK_LINES.sub("", stderr)[-4000:]
        death["op_index"] = len(done)
        death["generation"] = self.generation
        self.deaths.append(death)
        self._discard()
        results = done + [death]
        results += [{"kind": "skipped"} for _ in range(len(ops) - len(results))]
        return results[: len(ops)]


def _partial_results(partial: bytes) -> list[dict[str, Any]]:
    """Returns the complete results in an unfinished response line `{"id":n,"results":[r0,r1,...`."""
    text = partial.decode("utf-8", "replace")
    i = text.rfind('{"id":')
    if i < 0:
        return []
    j = text.find('"results":[', i)
    if j < 0:
        return []
    pos = j + len('"results":[')
    dec = json.JSONDecoder()
    out = []
    while pos < len(text):
        if text[pos] in ", ":
            pos += 1
            continue
        try:
            obj, pos = dec.raw_decode(text, pos)
        except ValueError:
            break
        out.append(decode(obj))
    return out
