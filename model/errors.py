"""How the model reports what the runtime would do besides returning: throw, fault, or undefined.

The runtime crashes in two ways (a `throw` with a message, or a fault such as reading unmapped
summary memory), and leaves some inputs undefined (zero pages, freeing free pages, unaligned grow).
The model raises one of these instead of silently doing something, so a differential harness can
compare a crash of the real runtime with the model's verdict.
"""


class ModelError(Exception):
    """Base of everything the model raises instead of returning."""


class GoThrow(ModelError):
    """The runtime would call throw(msg); the message is the runtime's own string."""

    def __init__(self, msg: str):
        super().__init__(msg)
        self.msg = msg


class GoFault(ModelError):
    """The runtime would fault: a read of unmapped memory, or an index out of range.

    Several historical bugs (golang/go#38605, #40191) changed no returned value and showed up only
    as a fault reading summary memory that sysGrow never mapped.
    """


class UndefinedBehaviour(ModelError):
    """The runtime leaves this input undefined (e.g. npages == 0, freeing free pages, unaligned grow).

    The differential fuzzer never sends such inputs to the real runtime.
    """
