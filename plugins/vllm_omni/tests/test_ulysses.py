"""vLLM-Omni's own Ulysses sequence parallelism (its sequence-split hooks and all-to-alls, 2 gloo
processes) with LVSA gives the single-process output: the backend sees the whole sequence for
its head shard, the pattern does not depend on the degree, and the padding vLLM-Omni appends
when the video does not split evenly (15 tokens over 2 ranks) is excluded."""

from __future__ import annotations

import torch
import torch.multiprocessing as mp
from omni_cpu import LVSA_SELF, forward_context, free_port, init_vllm, load_plugins

import test_hunyuan_video as hunyuan
import test_wan as wan

FRAMES, STEPS = 5, 3
# 3 tokens per latent frame: 15 video tokens, which 2 ranks split only with one padding token.
GRIDS = {"wan": dict(height=2, width=6), "hunyuan_video": dict(height=1, width=3)}
FAMILIES = {"wan": wan, "hunyuan_video": hunyuan}


def outputs(family, vllm_config, sequence_parallel):
    from vllm_omni.diffusion.registry import _apply_sequence_parallel_if_enabled

    module = FAMILIES[family]
    build = module.wan if family == "wan" else module.hunyuan
    model, od = build(vllm_config, LVSA_SELF, sequence_parallel)
    if sequence_parallel > 1:  # as vLLM-Omni's loader does, on the pipeline holding the model
        holder = torch.nn.Module()
        holder.transformer = model
        with forward_context(vllm_config, od):
            _apply_sequence_parallel_if_enabled(holder, od)
    args = module.inputs(FRAMES, seed=3, **GRIDS[family])
    with module.serving():
        return [module.run(model, vllm_config, od, args, step) for step in range(STEPS)]


def _rank(rank, world, port, family, path):
    config = init_vllm(rank, world, port, sequence_parallel=world)
    load_plugins()
    got = outputs(family, config, world)
    if rank == 0:
        torch.save(got, path)
    torch.distributed.barrier()


def _check(family, vllm_config, tmp_path):
    expected = outputs(family, vllm_config, 1)
    path = tmp_path / f"{family}.pt"
    mp.start_processes(_rank, args=(2, free_port(), family, str(path)), nprocs=2, start_method="spawn")
    for got, want in zip(torch.load(path), expected):
        torch.testing.assert_close(got, want, atol=2e-4, rtol=2e-4)
    assert not torch.allclose(expected[0], expected[1])  # the steps rotate the pattern


def test_wan_under_ulysses_equals_one_process(vllm_config, sparse_knobs, tmp_path):
    _check("wan", vllm_config, tmp_path)


def test_hunyuan_video_under_ulysses_equals_one_process(vllm_config, sparse_knobs, tmp_path):
    _check("hunyuan_video", vllm_config, tmp_path)
