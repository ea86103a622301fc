"""Sharding a transformer for Ulysses: the checks made before any work, the diffusers parallel
config, and the plan's hooks — installed by ``lvsa.enable(..., parallel=N)``, undone by disable.

This does what diffusers' ``ModelMixin.enable_parallelism`` does for context parallelism (record
the config on the model and its processors, apply the plan with diffusers' hooks) without its
device lookup, which divides by the accelerator count and so fails on CPU-only hosts (gloo), and
with the config's processors limited to the LVSA ones: the model's cross-attention and text-only
processors must keep attending locally (their queries are the rank's tokens, their keys whole).
"""

from __future__ import annotations

import atexit
import weakref
from typing import Callable

import torch
import torch.distributed as dist

from .collectives import gather_sequence, split_heads

# transformer -> the parallel config LVSA gave it: told apart from one diffusers' enable_parallelism
# set, so that enabling LVSA again on a transformer it sharded is a replacement, not a conflict.
_sharded: "weakref.WeakKeyDictionary[torch.nn.Module, object]" = weakref.WeakKeyDictionary()


def degree_of(value) -> int:
    """``parallel=`` as a process count: an int >= 1, or "auto" for the world size of the default
    process group (1 when torch.distributed is not initialised)."""
    if value == "auto":
        return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"lvsa: parallel must be a process count >= 1 or 'auto', got {value!r}")
    return value


def check(transformers: dict[str, torch.nn.Module], adapters_by_name: dict, degree: int) -> None:
    """Refuse, before anything is changed, what Ulysses over ``degree`` processes cannot run."""
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError(f"lvsa: parallel={degree} needs torch.distributed initialised (launch with torchrun "
                           f"--nproc-per-node {degree} and call lvsa.parallel.init_process_group() first)")
    if dist.get_world_size() != degree:
        raise ValueError(f"lvsa: parallel={degree} but the process group has {dist.get_world_size()} processes; "
                         "Ulysses runs over all of them (use parallel='auto')")
    from ..models import parallel_supported

    for name, transformer in transformers.items():
        adapter = adapters_by_name[name]
        if adapter.parallel_plan(transformer) is None:
            raise ValueError(f"lvsa: {name} ({type(transformer).__name__}): LVSA has no Ulysses sharding plan for "
                             f"{adapter.family}; supported: {parallel_supported()}")
        if transformer._parallel_config is not None and _sharded.get(transformer) is not transformer._parallel_config:
            raise ValueError(f"lvsa: {name} is already parallelised (diffusers' enable_parallelism); drop "
                             "parallel= and LVSA works inside diffusers' Ulysses, or load it without it")
        config = transformer.config
        heads = config.num_attention_heads  # every family with a plan names it so
        try:
            split_heads(heads, getattr(config, "num_key_value_heads", None) or heads, degree)
        except ValueError as error:
            raise ValueError(f"lvsa: {name}: {str(error).removeprefix('lvsa: ')}") from None


# (degree, default process group) -> ParallelConfig: built once per process group, since each build
# makes new process groups (and NCCL communicators) that enabling LVSA again must not multiply.
_configs: dict = {}
# The configs hold their device mesh's process groups: released at exit, while the interpreter is
# whole, rather than by its teardown, where a process group's worker threads can abort the process
# (PyTorch's reports of "terminate called without an active exception" at exit).
atexit.register(_configs.clear)


def configure(degree: int):
    """The diffusers ``ParallelConfig`` for Ulysses over all ``degree`` processes, on the device
    kind the process group communicates on (NCCL: this process's GPU; gloo: the CPU).
    ``ulysses_anything`` makes diffusers' hooks split with ``tensor_split``, so lengths need not
    divide by ``degree``."""
    key = (degree, id(dist.group.WORLD))
    if key not in _configs:
        _configs[key] = _build(degree)
    return _configs[key]


def _build(degree: int):
    from diffusers import ContextParallelConfig
    from diffusers.models._modeling_parallel import ParallelConfig
    from torch.distributed.device_mesh import init_device_mesh

    nccl = "nccl" in str(dist.get_backend())
    device = torch.device("cuda", torch.cuda.current_device()) if nccl else torch.device("cpu")
    context = ContextParallelConfig(ulysses_degree=degree, ulysses_anything=True)
    mesh = init_device_mesh(device.type, (1, degree), mesh_dim_names=context.mesh_dim_names)
    config = ParallelConfig(context_parallel_config=context)
    config.setup(dist.get_rank(), degree, device, mesh=mesh)
    return config


def shard(transformer: torch.nn.Module, adapter, config) -> Callable[[], None]:
    """Apply the plan of ``adapter``'s family to ``transformer``, with ``config`` on the LVSA
    processors of its self-attention layers; returns the undo."""
    from diffusers.hooks.context_parallel import apply_context_parallel, remove_context_parallel

    from ..models import LVSAProcessor

    modules = list(adapter.attention_modules(transformer))
    foreign = [name for name, module in modules if not isinstance(module.processor, LVSAProcessor)]
    if foreign:
        raise ValueError(f"lvsa: {', '.join(foreign)} keep a processor LVSA did not install; split over processes "
                         "they would attend to their own rank's tokens only, so Ulysses cannot run this model")
    processors = [module.processor for _, module in modules]
    plan = adapter.parallel_plan(transformer)
    group = config.context_parallel_config._flattened_mesh.get_group()
    transformer._parallel_config = _sharded[transformer] = config
    for processor in processors:
        processor._parallel_config = config
    if isinstance(plan, dict):
        splits = {name: entry for name, entry in plan.items() if isinstance(entry, dict)}
        gathers = {name: entry for name, entry in plan.items() if not isinstance(entry, dict)}
        apply_context_parallel(transformer, config.context_parallel_config, splits)
        # The plan's gathers run as LVSA's own hooks: diffusers' gather of uneven shards needs an
        # all-gather of unequal tensors, which gloo (CPU) does not have.
        hooks = [transformer.get_submodule(name).register_forward_hook(_gatherer(entry, group))
                 for name, entry in gathers.items()]

        def unplan():
            for hook in hooks:
                hook.remove()
            remove_context_parallel(transformer, splits)
    else:
        unplan = plan(group).install(transformer)

    def undo():
        unplan()
        for processor in processors:
            processor._parallel_config = None
        transformer._parallel_config = None
        _sharded.pop(transformer, None)

    return undo


def _gatherer(entry, group):
    """A forward hook gathering a module's output(s) along the sequence, as ``ContextParallelOutput``
    entries (one, or one per output) say."""
    entries = entry if isinstance(entry, (list, tuple)) else [entry]

    def hook(module, args, output):
        single = isinstance(output, torch.Tensor)
        outputs = [output] if single else list(output)
        for i, gather in enumerate(entries):
            if gather is not None and (gather.expected_dims is None or outputs[i].dim() == gather.expected_dims):
                outputs[i] = gather_sequence(outputs[i], gather.gather_dim, group)
        return outputs[0] if single else type(output)(outputs)

    return hook


__all__ = ["check", "configure", "degree_of", "shard"]
