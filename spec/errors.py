"""The errors palloc raises: PallocError, the one users see (a one-line message that says what to do,
and exit code 2), and the outcomes the runtime may have besides returning, which the spec names and
the model raises (throw, fault, undefined input).
"""


class PallocError(Exception):
    """A usage or environment error: bad input, a missing toolchain, a helper that cannot start.

    The message is one line and says what to do. The command-line tool prints it and exits 2.
    """


# What the runtime would do besides returning: throw, fault, or undefined.
# The runtime crashes in two ways (a `throw` with a message, or a fault such as reading unmapped
# summary memory), and leaves some inputs undefined (zero pages, freeing free pages, unaligned grow).
# The model raises one of these instead of silently doing something, so a differential harness can
# compare a crash of the real runtime with the model's verdict.


class ModelError(Exception):
    """Base of everything the model raises instead of returning."""


class GoThrow(ModelError):
    """The runtime would call throw(msg); msg is the runtime's own string, exactly as Go prints it
    after "fatal error: ", so that two agreeing crashes compare equal.

    detail: what else the model can say about the values it complained about (where the runtime
    prints "runtime: ..." lines before throwing); shown beside msg, never compared.
    """

    def __init__(self, msg: str, detail: str = ""):
        super().__init__(f"{msg} ({detail})" if detail else msg)
        self.msg = msg
        self.detail = detail


class GoFault(ModelError):
    """The runtime would fault: a read of unmapped memory, or an index out of range.

    Several historical bugs (golang/go#38605, #40191) changed no returned value and showed up only
    as a fault reading summary memory that sysGrow never mapped.
    """


class UndefinedBehaviour(ModelError):
    """The runtime leaves this input undefined (e.g. npages == 0, freeing free pages, unaligned grow).

    The differential fuzzer never sends such inputs to the real runtime.

    throw: when the runtime's own check catches the input all the same, the message it throws
    (freeing pages that were never allocated drops the scavenge index's count below zero:
    "allocated pages below zero?"); a replayed case that sends it agrees with that throw.
    """

    def __init__(self, msg: str, throw: str | None = None):
        super().__init__(msg)
        self.throw = throw
