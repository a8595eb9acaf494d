"""palloc.spec: the written specification (SPEC.md) and per-platform constants as data."""

from palloc.spec.constants import (  # noqa: F401
    DEFAULT_GO_VERSION,
    PAGE_SIZE,
    ConfigError,
    Platform,
    hypothetical,
    platform,
    platform_names,
)
