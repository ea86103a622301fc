"""GPU tests: need torch with a CUDA device and lvsa built with its CUDA module. They do not
run in CI (no GPU there); scripts/gpu_check.sh runs them on a GPU machine."""

import pytest

torch = pytest.importorskip("torch")

if not torch.cuda.is_available():
    pytest.skip("no CUDA device", allow_module_level=True)
try:
    from lvsa import _cuda  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the build
    pytest.skip(f"lvsa was built without its CUDA module ({error})", allow_module_level=True)


@pytest.fixture(autouse=True)
def _fresh_seed(request):
    # Fresh data per test, yet reproducible from the test id when a failure is investigated.
    torch.manual_seed(hash(request.node.nodeid) & 0xFFFFFFFF)
    yield
