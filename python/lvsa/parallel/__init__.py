"""Ulysses context parallelism: one generation over N GPUs, the same answer as on one.

``lvsa.enable(pipe, parallel=N)`` (or ``parallel="auto"``, or ``LVSA_PARALLEL``) under
``torchrun --nproc-per-node N`` splits every transformer's video tokens over the N processes
(diffusers' plan for Wan, LVSA's own for HunyuanVideo 1.5, CogVideoX and Cosmos 2.5, whose text
stays whole on every rank). In each self-attention layer an all-to-all gives every rank the
whole sequence, in the model's order, for ⌈H/N⌉ or ⌊H/N⌋ heads; LVSA attends with the pattern of
the whole video (identical to one GPU's, spec §6), and a second all-to-all brings the heads
back. A model already parallelised with diffusers' ``enable_parallelism`` (Wan's plan) needs no
``parallel=``: the LVSA processors do the all-to-all inside diffusers' sharding.

* :mod:`.collectives` — the head split and the all-to-alls (uneven lengths and head counts,
  replicated encoder tokens);
* :mod:`.attention` — the Ulysses attention wrapper the processors call;
* :mod:`.plans` — the pieces of the sharding plans the model adapters declare;
* :mod:`.install` — the checks, the diffusers parallel config and the plan's hooks;
* :mod:`.launch` — joining the process group under torchrun.
"""

from .launch import init_process_group, is_leader

__all__ = ["init_process_group", "is_leader"]
