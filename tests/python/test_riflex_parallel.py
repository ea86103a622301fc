"""RIFLEx + LVSA under Ulysses over N processes gives the 1-process answer, with real ``torch.distributed``.

RIFLEx rewrites one temporal column pair of the RoPE tables from each row's frame position, so it
must see the whole video's table, never one rank's share of it. pytest launches this file under
``torchrun --nproc-per-node N`` (test_parallel's launcher: gloo on the CPU, NCCL with
``LVSA_TEST_DEVICE=cuda``). Every rank builds each RIFLEx family's tiny diffusers transformer at
video lengths that divide by N and that do not, computes RIFLEx (s = 2) with the sparse LVSA
pattern in one process itself, then runs it with ``lvsa.enable(..., parallel=N)`` — RIFLEx
enabled before LVSA and after it — and compares; rank 0 writes every rank's results to a JSON
report. A split of the RoPE output ahead of RIFLEx (a plan that shards the rope module's tables)
is refused with a clear error, not rewritten from guessed positions.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("diffusers")

import torch  # noqa: E402

import lvsa  # noqa: E402
import lvsa.riflex as riflex  # noqa: E402
import tiny_diffusers as td  # noqa: E402
from test_parallel import (FAMILIES, GEOMETRIES, _at_geometry, _compare, _error, _run,  # noqa: E402
                           join_workers, report_from_every_rank, torchrun)

RIFLEX_FAMILIES = ["wan", "hunyuan_video", "cogvideox", "cogvideox1.5", "cosmos", "wan_ti2v", "hunyuan_video_i2v"]
S, TRAIN_LEN = 2.0, 4  # train_len below the tiny videos' 7 and 8 frames: the rewritten frequency matters
STEP = 1
ORDERS = ("riflex first", "lvsa first")
# The families whose RIFLEx rewrites the rope module's output tables.
ROPE_OUTPUT_FAMILIES = ["hunyuan_video", "cosmos"]


# --- the worker: runs under torchrun ------------------------------------------------------------

def _enable_both(transformer, degree: int, order: str) -> None:
    if order == "riflex first":
        riflex.enable(transformer, S, train_len=TRAIN_LEN)
    lvsa.enable(transformer, parallel=degree, **td.SPARSE)
    if order == "lvsa first":
        riflex.enable(transformer, S, train_len=TRAIN_LEN)


def _disable_both(transformer) -> None:
    riflex.disable(transformer)
    lvsa.disable(transformer)


def _family_cases(results: list, degree: int) -> None:
    for family in RIFLEX_FAMILIES:
        for frames, p in GEOMETRIES:
            case = FAMILIES[family]()
            _at_geometry(case, frames, p)
            name = f"{family} T={frames} P={p}"
            lvsa.enable(case.transformer, **td.SPARSE)
            sparse = _run(case, STEP)
            riflex.enable(case.transformer, S, train_len=TRAIN_LEN)
            single = _run(case, STEP)
            _disable_both(case.transformer)
            # RIFLEx did engage: its 1-process output is not LVSA's alone.
            results.append(dict(case=f"{name} RIFLEx changes the output", max_error=_error(sparse, single),
                                close=_error(sparse, single) > 1e-3))
            for order in ORDERS:
                _enable_both(case.transformer, degree, order)
                _compare(results, f"{name} {order}", single, _run(case, STEP))
                _disable_both(case.transformer)


def _rope_split_refusals(degree: int) -> dict:
    """RIFLEx on a model whose rope output some plan splits (as LVSA's own plans once did): the
    message each family's forward raises."""
    from diffusers.hooks.context_parallel import apply_context_parallel
    from diffusers.models._modeling_parallel import ContextParallelInput as Split

    split = Split(split_dim=0, expected_dims=2, split_output=True)
    messages = {}
    for family in ROPE_OUTPUT_FAMILIES:
        case = FAMILIES[family]()
        lvsa.enable(case.transformer, parallel=degree, **td.SPARSE)
        apply_context_parallel(case.transformer, case.transformer._parallel_config.context_parallel_config,
                               {"rope": {0: split, 1: split}})
        riflex.enable(case.transformer, S, train_len=TRAIN_LEN)
        try:
            _run(case, STEP)
            messages[family] = None
        except ValueError as error:
            messages[family] = str(error)
    return messages


def main(report: str) -> None:
    device = join_workers()
    degree = torch.distributed.get_world_size()
    rank = torch.distributed.get_rank()
    results: list = []
    _family_cases(results, degree)
    report_from_every_rank(report, device, dict(rank=rank, results=results, refusals=_rope_split_refusals(degree)))


# --- the tests: launch the worker ---------------------------------------------------------------

@pytest.fixture(scope="module", params=[2, 4], ids=lambda n: f"{n}proc")
def launched(request, tmp_path_factory):
    degree = request.param
    if td.DEVICE.type == "cuda" and torch.cuda.device_count() < degree:
        pytest.skip(f"{degree} processes need {degree} GPUs")
    report = tmp_path_factory.mktemp("riflex_parallel") / "report.json"
    done = torchrun(degree, Path(__file__), str(report))
    assert done.returncode == 0, f"torchrun failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    return json.loads(report.read_text())


def test_riflex_with_lvsa_on_every_rank_matches_one_process(launched):
    assert len(launched["ranks"]) == launched["degree"]
    failures = [(r["rank"], c) for r in launched["ranks"] for c in r["results"] if not c["close"]]
    assert not failures, failures
    cases = {c["case"] for c in launched["ranks"][0]["results"]}
    assert len(cases) == len(RIFLEX_FAMILIES) * len(GEOMETRIES) * (1 + len(ORDERS))


def test_a_split_rope_table_is_refused(launched):
    for rank in launched["ranks"]:
        for family, message in rank["refusals"].items():
            assert message is not None and "RoPE table" in message and "split" in message, (family, message)


if __name__ == "__main__":
    main(sys.argv[1])
