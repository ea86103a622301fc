"""LVSA's logger: one line per fact, said once, never silent.

Messages go to the ``lvsa`` logger, which prints to stderr at INFO unless the application
configured logging itself (``LVSA_LOG_LEVEL`` overrides the level).
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger("lvsa")
if not logger.handlers:
    _handler = logging.StreamHandler()
    _handler.setFormatter(logging.Formatter("[lvsa] %(message)s"))
    logger.addHandler(_handler)
    logger.setLevel(os.environ.get("LVSA_LOG_LEVEL", "INFO").upper())
    logger.propagate = False

_said: set[str] = set()


def say_once(message: str, level: int = logging.INFO) -> None:
    """Log ``message`` the first time it is seen in this process."""
    if message not in _said:
        _said.add(message)
        logger.log(level, message)


def _let_torch_compile_trace_say_once() -> None:
    """Under torch.compile, run say_once after the compiled graph instead of breaking it."""
    try:
        import torch._dynamo
    except ImportError:
        return
    torch._dynamo.config.reorderable_logging_functions.add(say_once)


_let_torch_compile_trace_say_once()
