"""LVSA's logger: one line per fact, said once, never silent.

Messages go to the ``lvsa`` logger, which prints to stderr at INFO unless the application
configured logging itself (``LVSA_LOG_LEVEL`` overrides the level).
"""

from __future__ import annotations

import logging
import os
import sys

logger = logging.getLogger("lvsa")
if not logger.handlers:
    _handler = logging.StreamHandler()
    _handler.setFormatter(logging.Formatter("[lvsa] %(message)s"))
    logger.addHandler(_handler)
    logger.setLevel(os.environ.get("LVSA_LOG_LEVEL", "INFO").upper())
    logger.propagate = False

_said: set[str] = set()


def _follower() -> bool:
    """A process of a torch.distributed group other than rank 0: under torchrun every rank runs
    the same code and would say the same lines. Looked up without importing torch."""
    torch = sys.modules.get("torch")
    distributed = getattr(torch, "distributed", None)
    return bool(distributed and distributed.is_available() and distributed.is_initialized()
                and distributed.get_rank() != 0)


def say_once(message: str, level: int = logging.INFO) -> None:
    """Log ``message`` the first time it is seen in this process (on rank 0 alone under torchrun)."""
    if message not in _said:
        _said.add(message)
        if not _follower():
            logger.log(level, message)


def _let_torch_compile_trace_say_once() -> None:
    """Under torch.compile, run say_once after the compiled graph instead of breaking it."""
    try:
        import torch._dynamo
    except ImportError:
        return
    torch._dynamo.config.reorderable_logging_functions.add(say_once)


_let_torch_compile_trace_say_once()
