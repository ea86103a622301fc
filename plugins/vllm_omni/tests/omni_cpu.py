"""vLLM-Omni on a CPU, for the plugin's tests: vLLM's parallel groups on gloo, a vLLM config on
the CPU device, and a test-only shim for the two things vLLM-Omni's CPU platform cannot do —
resolve a diffusion attention backend (it raises NotImplementedError) and dispatch the dense
SDPA backend's forward (it dispatches on the GPU platforms only). The shim lives here, never in
the plugin; everything else (registry, selector, Attention layer, Ulysses, models) is vLLM-Omni's.
"""

from __future__ import annotations

import socket
import sys
from contextlib import contextmanager
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "oracle"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def install_cpu_shim() -> None:
    from vllm_omni.diffusion.attention.backends.registry import DiffusionAttentionBackendEnum
    from vllm_omni.diffusion.attention.backends.sdpa import SDPAImpl
    from vllm_omni.platforms.interface import UnspecifiedOmniPlatform

    def resolve(cls, selected_backend, head_size, allow_trtllm_default=True):
        name = (selected_backend or "TORCH_SDPA").upper()
        cls.validate_diffusion_attn_backend(name)
        return DiffusionAttentionBackendEnum[name].get_path()

    UnspecifiedOmniPlatform.get_diffusion_attn_backend_cls = classmethod(resolve)
    SDPAImpl.forward = SDPAImpl.forward_cuda  # the platform dispatch knows no CPU


def init_vllm(rank: int = 0, world_size: int = 1, port: int | None = None, sequence_parallel: int = 1):
    """vLLM-Omni's distributed state on gloo, and the vLLM config; returns the vLLM config."""
    from vllm.config import DeviceConfig, VllmConfig
    from vllm_omni.diffusion.distributed.parallel_state import (init_distributed_environment,
                                                                 initialize_model_parallel)

    method = f"tcp://127.0.0.1:{port or free_port()}"
    if not torch.distributed.is_initialized():
        # Initialised here so that vLLM-Omni does not pick a device by rank % GPU count (0 here).
        torch.distributed.init_process_group("gloo", init_method=method, world_size=world_size, rank=rank)
    init_distributed_environment(world_size=world_size, rank=rank, local_rank=rank,
                                 distributed_init_method=method, backend="gloo")
    initialize_model_parallel(sequence_parallel_size=sequence_parallel, ulysses_degree=sequence_parallel,
                              backend="gloo")
    install_cpu_shim()
    return VllmConfig(device_config=DeviceConfig(device="cpu"))


def load_plugins() -> None:
    """Load the plugin through vLLM-Omni's own loader (the entry point the package declares)."""
    import vllm_omni.plugins as plugins

    plugins.omni_plugins_loaded = False
    plugins.load_omni_general_plugins()


def diffusion_config(attention=None, sequence_parallel: int = 1):
    from vllm_omni.diffusion.data import DiffusionParallelConfig, OmniDiffusionConfig

    parallel = DiffusionParallelConfig(sequence_parallel_size=sequence_parallel, ulysses_degree=sequence_parallel)
    return OmniDiffusionConfig(model="tiny", diffusion_attention_config=attention, parallel_config=parallel)


@contextmanager
def building(vllm_config, od_config):
    """Model construction as vLLM-Omni's loader does it: both configs current, inside a forward
    context (the attention layers pick their sequence-parallel strategy from it)."""
    from vllm.config import set_current_vllm_config
    from vllm_omni.diffusion.config import set_current_diffusion_config

    with (set_current_vllm_config(vllm_config), set_current_diffusion_config(od_config),
          forward_context(vllm_config, od_config)):
        yield


@contextmanager
def forward_context(vllm_config, od_config, step=None):
    from vllm_omni.diffusion.forward_context import set_forward_context

    with set_forward_context(vllm_config=vllm_config, omni_diffusion_config=od_config, denoise_step_idx=step):
        yield


LVSA_SELF = {"per_role": {"self": {"backend": "LVSA"}}}
