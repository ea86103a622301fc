"""GPU tests: need torch with a CUDA device and lvsa built with its CUDA module. They do not
run in CI (no GPU there); scripts/gpu_check.sh runs them on a GPU machine.

Every test runs once per kernel family the device can run (LVSA_CUDA_KERNEL): sm80 and sm90
on a compute capability 9.0 GPU (H100/H200), sm80 elsewhere. Setting
LVSA_CUDA_KERNEL in the environment runs that family only."""

import os
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "oracle"))  # dense_oracle, shared
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))  # lvsa_fixtures, shared


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


def _kernel_families():
    forced = os.environ.get("LVSA_CUDA_KERNEL")
    if forced:
        return [forced]
    try:
        hopper = torch.cuda.is_available() and torch.cuda.get_device_capability() == (9, 0)
    except Exception:  # noqa: BLE001 - no usable driver: the tests are skipped anyway
        hopper = False
    # A named family, never auto: auto runs dense plans on PyTorch's SDPA, not on LVSA's kernels.
    return ["sm80", "sm90"] if hopper else ["sm80"]


def _release_device_plans():
    try:
        from lvsa.backends import cuda as cuda_backend
    except ImportError:  # no CUDA module: the tests are skipped anyway
        return
    if torch.cuda.is_available():
        cuda_backend.release_device_plans()


@pytest.fixture(autouse=True, params=_kernel_families())
def cuda_kernel(request, monkeypatch):
    """The kernel family every lvsa CUDA call of the test runs. The backend reads
    LVSA_CUDA_KERNEL when it sets up a geometry's device plan, so the plans earlier tests
    left are released first."""
    monkeypatch.setenv("LVSA_CUDA_KERNEL", request.param)
    _release_device_plans()
    yield request.param
    _release_device_plans()


@pytest.fixture(autouse=True)
def _fresh_seed(request):
    # Fresh data per test, yet reproducible from the test id when a failure is investigated.
    torch.manual_seed(hash(request.node.nodeid) & 0xFFFFFFFF)
    yield
