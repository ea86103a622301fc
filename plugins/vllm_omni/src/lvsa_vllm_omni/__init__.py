"""LVSA as a vLLM-Omni diffusion attention backend.

vLLM-Omni calls :func:`register` (its ``vllm_omni.general_plugins`` entry point) in every process
that builds or serves a model. It refuses an unsupported vLLM-Omni release and adds ``LVSA`` to
vLLM-Omni's backend registry, so ``DIFFUSION_ATTENTION_BACKEND=LVSA`` or
``--diffusion-attention-config '{"per_role": {"self": {"backend": "LVSA"}}}'`` selects it.
Nothing else changes until a layer is built with the LVSA backend. Guide: docs/serving.md.
"""

from __future__ import annotations

from . import versions

BACKEND_NAME = "LVSA"
BACKEND_PATH = "lvsa_vllm_omni.backend.LVSABackend"


def register() -> None:
    """Check the installed versions and register the ``LVSA`` backend (idempotent: vLLM-Omni
    may load plugins more than once per process)."""
    versions.check()
    import aenum
    from vllm_omni.diffusion.attention.backends.registry import DiffusionAttentionBackendEnum

    # vLLM-Omni's registry is a plain Enum whose register_diffusion_backend only overrides an
    # existing member, so a new backend name is an added member.
    if BACKEND_NAME not in DiffusionAttentionBackendEnum.__members__:
        aenum.extend_enum(DiffusionAttentionBackendEnum, BACKEND_NAME, BACKEND_PATH)
