import json
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="session")
def golden_cases():
    return json.loads((DATA / "pattern_vectors.json").read_text())["cases"]
