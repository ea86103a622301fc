"""Ulysses over N processes gives the 1-process answer, with real ``torch.distributed``.

pytest launches this file under ``torchrun --nproc-per-node N`` (gloo on the CPU; NCCL with
``LVSA_TEST_DEVICE=cuda``, one GPU a process). Every rank builds each family's tiny diffusers
transformer, computes the 1-process outputs itself (no sharding), then runs the same inputs with
``lvsa.enable(..., parallel=N)`` and compares; rank 0 collects every rank's results into a JSON
report that the tests below read. Cases: every family with Ulysses support, the sparse pattern
(at two rotation offsets) against 1-process LVSA, the dense pattern against the model's own
attention (LVSA adding nothing), video lengths that divide by N and that do not, head counts
that do not divide by N (3, 5 and 8 processes: ⌈H/N⌉ or ⌊H/N⌋ heads a rank, grouped-query k/v
heads shared by the ranks whose queries read them), and after ``disable`` the model is its
unsharded self again. On GPUs, Wan also runs under diffusers' own ``enable_parallelism``: alone
(the model's attention through diffusers' Ulysses) and with LVSA enabled inside it. The torchrun example runs end to end on a tiny saved pipeline.
"""

from __future__ import annotations

import faulthandler
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("diffusers")

import torch  # noqa: E402

import lvsa  # noqa: E402
import lvsa.parallel  # noqa: E402
import tiny_diffusers as td  # noqa: E402

HEADS = 4  # split over 2 and 4 processes
FAMILIES = {
    "wan": lambda: td.wan(num_attention_heads=HEADS),
    "hunyuan_video": lambda: td.hunyuan_video(heads=HEADS),
    "cogvideox": lambda: td.cogvideox(heads=HEADS),
    "cogvideox1.5": lambda: td.cogvideox(patch_size_t=2, heads=HEADS),
    "cosmos": lambda: td.cosmos(heads=HEADS),
    "cosmos3": lambda: td.cosmos3(num_attention_heads=2 * HEADS, num_key_value_heads=HEADS),  # grouped-query
    # Image to video (Cosmos' video-to-world conditioning is in its case above): Wan 2.1 I2V's image
    # tokens in cross-attention, TI2V-5B's per-token timesteps, HunyuanVideo 1.5's image tokens in
    # the encoder stream, CogVideoX 1.5's image channels and ofs. (CogVideoX 1.0 I2V's learned
    # positional embedding is fixed to one size, which the second geometry is not.)
    "wan_i2v": lambda: td.wan_i2v(num_attention_heads=HEADS),
    "wan_ti2v": lambda: td.wan_ti2v(num_attention_heads=HEADS),
    "hunyuan_video_i2v": lambda: td.hunyuan_video_i2v(heads=HEADS),
    "cogvideox1.5_i2v": lambda: td.cogvideox(patch_size_t=2, heads=HEADS, image=True),
}
# Head counts that N does not divide, on a few families (every rank of a small machine runs every
# case): the joint models' encoder tokens after (HunyuanVideo) and before the video (Cosmos 3,
# whose queries are video only), and Wan 2.1 1.3B's 12 heads on 5 and 8 processes.
UNEVEN = {
    3: {"hunyuan_video 4 heads": lambda: td.hunyuan_video(heads=4),  # 2, 1, 1
        "cosmos3 4/2 heads": lambda: td.cosmos3(num_attention_heads=4, num_key_value_heads=2)},  # k/v 0, 1, 1
    5: {"wan 12 heads": lambda: td.wan(num_attention_heads=12),  # 3, 3, 2, 2, 2
        "cosmos3 8/4 heads": lambda: td.cosmos3(num_attention_heads=8, num_key_value_heads=4)},  # k/v 0, 1, 2, 3, 3
    8: {"wan 12 heads": lambda: td.wan(num_attention_heads=12)},  # 2, 2, 2, 2, 1, 1, 1, 1
}
CASES_AT = {2: FAMILIES, 4: FAMILIES, **UNEVEN}
# (latent frames T, tokens per frame P): 8 x 4 = 32 tokens divide by 2 and 4; 7 x 9 = 63 by neither.
GEOMETRIES = [(8, 4), (7, 9)]
STEPS = (0, 1)  # two rotation offsets of the kfi-3 sparse pattern


# --- the worker: runs under torchrun ------------------------------------------------------------

def _at_geometry(case: td.Case, frames: int, p: int) -> None:
    """Point ``case``'s inputs at a video of ``frames`` token frames of ``p`` (a square) tokens."""
    side = {4: 2, 9: 3}[p]
    patch = 1 if case.family == "hunyuan_video" else 2
    latent_side = side * patch
    patch_t = (case.transformer.config.get("patch_size_t") or 1) if case.family == "cogvideox" else 1
    latent_frames = frames * patch_t
    base = case.inputs
    if case.family == "cosmos3":
        case.inputs = _cosmos3_inputs(frames, side)
        return

    def inputs(batch):
        kwargs = base(batch)
        video = kwargs["hidden_states"]
        generator = torch.Generator().manual_seed(11)
        if case.family == "cogvideox":  # [B, F, C, H, W]
            shape = (batch, latent_frames, video.shape[2], latent_side, latent_side)
        else:                           # [B, C, F, H, W]
            shape = (batch, video.shape[1], latent_frames, latent_side, latent_side)
        kwargs["hidden_states"] = torch.randn(*shape, generator=generator)
        if kwargs["timestep"].ndim == 2:  # Wan TI2V's per-token timesteps: 0 on the first frame's tokens
            kwargs["timestep"] = torch.full((batch, frames * p), 500.0)
            kwargs["timestep"][:, :p] = 0.0
        if case.family == "cosmos":  # video-to-world: a conditioning frame, per-frame timesteps (per-token modulation)
            kwargs["condition_mask"] = torch.zeros(batch, 1, latent_frames, latent_side, latent_side)
            kwargs["condition_mask"][:, :, 0] = 1
            kwargs["padding_mask"] = torch.zeros(1, 1, latent_side, latent_side)
            kwargs["timestep"] = torch.full((batch, 1, latent_frames, 1, 1), 0.5)
            kwargs["timestep"][:, :, 0] = 0.1
        if case.family == "cogvideox":  # RoPE tables of the token grid, as the pipeline makes them
            from diffusers.models.embeddings import get_3d_rotary_pos_embed

            kwargs["image_rotary_emb"] = get_3d_rotary_pos_embed(
                embed_dim=case.transformer.config.attention_head_dim, crops_coords=((0, 0), (side, side)),
                grid_size=(side, side), temporal_size=frames)
        return kwargs

    case.inputs = inputs


def _cosmos3_inputs(frames: int, side: int):
    """Cosmos 3's packed sequence (one sample): 5 text tokens, then ``frames`` x ``side``² video tokens."""
    text, video = 5, frames * side * side

    def inputs(batch):
        positions = torch.cat([torch.arange(text).expand(3, -1), text + torch.arange(video).expand(3, -1)], dim=1)
        latents = torch.randn(1, 4, frames, 2 * side, 2 * side, generator=torch.Generator().manual_seed(11))
        return dict(input_ids=torch.arange(text) + 3, text_indexes=torch.arange(text), position_ids=positions,
                    und_len=text, sequence_length=text + video, vision_tokens=[latents],
                    vision_token_shapes=[(frames, side, side)],
                    vision_sequence_indexes=torch.arange(text, text + video),
                    vision_mse_loss_indexes=torch.arange(text, text + video),
                    vision_timesteps=torch.full((video,), 500.0), vision_noisy_frame_indexes=[torch.arange(frames)])

    return inputs


def _run(case: td.Case, step=None):
    if step is None:
        return case.run()
    with lvsa.denoising_step(step):
        return case.run()


def _error(expected, actual) -> float:
    return (actual.float() - expected.float()).abs().max().item()


def _close(expected, actual) -> bool:
    return torch.allclose(actual.float(), expected.float(), **td.TOLERANCE)


def _compare(results: list, name: str, expected, actual) -> None:
    results.append(dict(case=name, max_error=_error(expected, actual), close=_close(expected, actual)))


def _family_cases(results: list, degree: int) -> None:
    for family, make in CASES_AT[degree].items():
        for frames, p in GEOMETRIES:
            case = make()
            _at_geometry(case, frames, p)
            name = f"{family} T={frames} P={p}"
            unpatched = _run(case)
            lvsa.enable(case.transformer, **td.SPARSE)
            single = [_run(case, step) for step in STEPS]

            lvsa.enable(case.transformer, parallel=degree, **td.SPARSE)
            for step, expected in zip(STEPS, single):
                _compare(results, f"{name} sparse step {step}", expected, _run(case, step))
            lvsa.enable(case.transformer, parallel=degree, **td.DENSE)
            _compare(results, f"{name} dense vs unpatched", unpatched, _run(case, 0))
            lvsa.disable(case.transformer)
            _compare(results, f"{name} after disable", unpatched, _run(case))
            # The sparse pattern did engage: the 1-process sparse output is not the dense one.
            results.append(dict(case=f"{name} sparse differs from dense", max_error=_error(unpatched, single[0]),
                                close=_error(unpatched, single[0]) > 1e-3))


def _diffusers_wan_cases(results: list, degree: int) -> None:
    """diffusers' own enable_parallelism (Wan's plan); it needs an accelerator to pick a device."""
    from diffusers import ContextParallelConfig

    case = FAMILIES["wan"]()
    unpatched = _run(case)
    lvsa.enable(case.transformer, **td.SPARSE)
    single = [_run(case, step) for step in STEPS]
    lvsa.disable(case.transformer)
    case.transformer.enable_parallelism(config=ContextParallelConfig(ulysses_degree=degree))
    _compare(results, "wan diffusers enable_parallelism, no LVSA", unpatched, _run(case))
    lvsa.enable(case.transformer, **td.SPARSE)
    for step, expected in zip(STEPS, single):
        _compare(results, f"wan diffusers enable_parallelism + LVSA step {step}", expected, _run(case, step))


def _refusals(degree: int) -> dict:
    """The messages of what Ulysses refuses before any work."""
    messages = {}
    for name, make, kwargs in [
        ("heads", lambda: td.wan(num_attention_heads=degree - 1), dict(parallel=degree)),
        ("world", FAMILIES["wan"], dict(parallel=degree + 1)),
        # 2N + 2 query heads: rank 0's 3 read k/v head 0 twice and k/v head 1 once.
        ("kv heads", lambda: td.cosmos3(num_attention_heads=2 * degree + 2, num_key_value_heads=degree + 1),
         dict(parallel=degree)),
    ]:
        case = make()
        try:
            lvsa.enable(case.transformer, **kwargs)
            messages[name] = None
        except (ValueError, RuntimeError) as error:
            messages[name] = str(error)
            untouched = not case.transformer._forward_pre_hooks and case.transformer._parallel_config is None
            messages[name + " untouched"] = untouched
    return messages


def main(report: str) -> None:
    device = join_workers()
    degree = torch.distributed.get_world_size()
    rank = torch.distributed.get_rank()
    results: list = []
    _family_cases(results, degree)
    if device.type == "cuda" and CASES_AT[degree] is FAMILIES:
        _diffusers_wan_cases(results, degree)
    report_from_every_rank(report, device, dict(rank=rank, results=results, refusals=_refusals(degree)))


def join_workers() -> torch.device:
    """A worker's start: join torchrun's process group, with faulthandler on, so that a rank that
    aborts prints every thread's stack (the test shows its stderr)."""
    faulthandler.enable()
    return lvsa.parallel.init_process_group()


def report_from_every_rank(report: str, device: torch.device, mine: dict) -> None:
    """Gather every rank's ``mine``; rank 0 writes them to ``report`` (JSON) for the test."""
    degree = torch.distributed.get_world_size()
    everything = [None] * degree
    torch.distributed.all_gather_object(everything, mine)
    if torch.distributed.get_rank() == 0:
        Path(report).write_text(json.dumps(dict(degree=degree, device=device.type, ranks=everything), indent=1))
    torch.distributed.barrier()  # the report is written before any rank leaves
    torch.distributed.destroy_process_group()
    # The verdict is the report. Ending without the interpreter's teardown keeps PyTorch's from
    # deciding it: in CI a gloo rank aborted after its work twice ("terminate called without an
    # active exception", from a C++ destructor; not reproduced in 40 local runs, loaded or not).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


# --- the tests: launch the worker ---------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _environment(**extra) -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", NCCL_NVLS_ENABLE="0", PYTHONUNBUFFERED="1", **extra)


def torchrun(nproc: int, script: Path, *args: str, timeout: int = 300, **env) -> subprocess.CompletedProcess:
    """``torchrun --nproc-per-node nproc script args`` on this host, one thread a process."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc),
               "--master-addr", "127.0.0.1", "--master-port", str(_free_port()), str(script), *args]
    return subprocess.run(command, env=_environment(**env), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module", params=list(CASES_AT), ids=lambda n: f"{n}proc")
def launched(request, tmp_path_factory):
    degree = request.param
    if td.DEVICE.type == "cuda" and torch.cuda.device_count() < degree:
        pytest.skip(f"{degree} processes need {degree} GPUs")
    report = tmp_path_factory.mktemp("parallel") / "report.json"
    done = torchrun(degree, Path(__file__), str(report))
    assert done.returncode == 0, f"torchrun failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    return json.loads(report.read_text()), done


def test_every_rank_matches_one_process(launched):
    report, _ = launched
    assert len(report["ranks"]) == report["degree"]
    failures = [(r["rank"], c) for r in report["ranks"] for c in r["results"] if not c["close"]]
    assert not failures, failures
    cases = {c["case"] for c in report["ranks"][0]["results"]}
    families = CASES_AT[report["degree"]]
    diffusers_own = 3 if report["device"] == "cuda" and families is FAMILIES else 0
    assert len(cases) == len(families) * len(GEOMETRIES) * (len(STEPS) + 3) + diffusers_own


def test_refusals_come_before_any_work(launched):
    report, _ = launched
    n = report["degree"]
    for rank in report["ranks"]:
        refusals = rank["refusals"]
        assert f"{n - 1} attention heads cannot split over {n} processes" in refusals["heads"]
        assert f"parallel={n + 1} but the process group has {n} processes" in refusals["world"]
        assert (f"{2 * n + 2} query heads and {n + 1} k/v heads does not split over {n} processes"
                in refusals["kv heads"]) and "process counts that split these heads: 1, " in refusals["kv heads"]
        assert all(refusals[f"{name} untouched"] for name in ("heads", "world", "kv heads"))


def test_rank_0_alone_prints(launched):
    _, done = launched
    lines = [line for line in done.stderr.splitlines() if line.startswith("[lvsa] ")]
    assert any("Ulysses over" in line for line in lines)
    duplicated = {line for line in lines if lines.count(line) > 1}
    assert not duplicated, duplicated


def test_example_under_torchrun_matches_one_process(tmp_path):
    """examples/ulysses_wan.py on a tiny saved Wan pipeline (sparse pattern through LVSA_* knobs),
    on the CPU: 2 processes under torchrun give the 1-process latents; rank 0 alone writes."""
    import tiny_pipelines

    example = Path(__file__).resolve().parents[2] / "examples" / "ulysses_wan.py"
    model = tiny_pipelines.wan(tmp_path / "wan")
    args = ["--model", str(model), "--prompt", "a red fox", "--frames", "29", "--height", "32", "--width", "32",
            "--steps", "3"]
    env = dict(CUDA_VISIBLE_DEVICES="", LVSA_REFERENCE="4", LVSA_WINDOW="1", LVSA_KEYFRAME_INTERVAL="3")
    one = subprocess.run([sys.executable, str(example), *args, "--latents", str(tmp_path / "one.pt")],
                         env=_environment(**env), capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-4000:]
    two = torchrun(2, example, *args, "--latents", str(tmp_path / "two.pt"), **env)
    assert two.returncode == 0, two.stderr[-4000:]
    assert two.stdout.count("wrote ") == 1 and "Ulysses over 2 processes" in two.stderr
    assert "kfi 3" in two.stderr  # the pattern is sparse
    torch.testing.assert_close(torch.load(tmp_path / "two.pt"), torch.load(tmp_path / "one.pt"),
                               atol=1e-5, rtol=1e-5)


def test_parallel_needs_a_process_group():
    with pytest.raises(RuntimeError, match="parallel=2 needs torch.distributed initialised"):
        lvsa.enable(td.wan().transformer, parallel=2)
    with pytest.raises(ValueError, match="parallel must be a process count"):
        lvsa.enable(td.wan().transformer, parallel=0)
    assert lvsa.enable(td.wan().transformer, parallel="auto").settings.parallel == 1  # one process: off


def test_heads_split_unevenly_without_padding():
    from lvsa.parallel.collectives import split_heads

    wan = split_heads(12, 12, 8)  # Wan 2.1 1.3B on 8 GPUs
    assert [len(heads) for heads in wan.query] == [2, 2, 2, 2, 1, 1, 1, 1] and wan.kv == wan.query
    assert [h for heads in wan.query for h in heads] == list(range(12))  # every head once, in order
    gqa = split_heads(8, 4, 5)
    assert gqa.query == (range(0, 2), range(2, 4), range(4, 6), range(6, 7), range(7, 8))
    assert gqa.kv == (range(0, 1), range(1, 2), range(2, 3), range(3, 4), range(3, 4))  # ranks 3, 4 share k/v head 3
    assert split_heads(8, 2, 4).kv == (range(0, 1), range(0, 1), range(1, 2), range(1, 2))
    with pytest.raises(ValueError, match=r"8 query heads and 4 k/v heads does not split over 3 processes.*"
                                         r"process counts that split these heads: 1, 2, 4, 5, 6, 7, 8$"):
        split_heads(8, 4, 3)  # rank 0's query heads 0-2 read k/v head 0 twice, k/v head 1 once
    with pytest.raises(ValueError, match="12 attention heads cannot split over 13 processes"):
        split_heads(12, 12, 13)


if __name__ == "__main__":
    main(sys.argv[1])
