"""The one error type users see: a one-line message that says what to do, and exit code 2."""


class PallocError(Exception):
    """A usage or environment error: bad input, a missing toolchain, a helper that cannot start.

    The message is one line and says what to do. The command-line tool prints it and exits 2.
    """
