import json
import logging
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
DATA = TESTS / "data"
sys.path.insert(0, str(TESTS / "oracle"))  # dense_oracle, shared with tests/gpu
sys.path.insert(0, str(TESTS / "fixtures"))  # lvsa_fixtures, shared with tests/gpu too

from lvsa_fixtures import offsets  # noqa: E402,F401


@pytest.fixture(scope="session")
def golden_cases():
    return json.loads((DATA / "pattern_vectors.json").read_text())["cases"]


@pytest.fixture
def log(monkeypatch):
    """LVSA's log lines during the test, each said afresh (say_once forgets earlier tests)."""
    import lvsa._log

    monkeypatch.setattr(lvsa._log, "_said", set())
    records = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record)
    logger = logging.getLogger("lvsa")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)
