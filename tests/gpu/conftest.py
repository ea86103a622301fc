"""GPU tests: need torch with a CUDA device and lvsa built with its CUDA module. They do not
run in CI (no GPU there); scripts/gpu_check.sh runs them on a GPU machine."""

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")



def _why_not_runnable():
    if not torch.cuda.is_available():
        return "no CUDA device"
    try:
        from lvsa import _cuda  # noqa: F401
    except ImportError as error:  # depends on the build
        return f"lvsa was built without its CUDA module ({error})"
    return None


def pytest_collection_modifyitems(config, items):
    # A conftest cannot skip itself at import time; mark every GPU test skipped instead.
    # The hook sees the whole session's items: touch only this folder's.
    reason = _why_not_runnable()
    here = Path(__file__).parent
    if reason:
        for item in items:
            if here in Path(item.path).parents:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(autouse=True)
def _fresh_seed(request):
    # Fresh data per test, yet reproducible from the test id when a failure is investigated.
    torch.manual_seed(hash(request.node.nodeid) & 0xFFFFFFFF)
    yield
