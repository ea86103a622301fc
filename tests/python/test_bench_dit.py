"""``lvsa bench --dit`` on the CPU: the smoke run writes the result file the README tables are
made from, and the methods it times compute what they claim: FlexAttention's mask is LVSA's
pattern, and dense attention on the valid tokens only is the model's masked attention."""

import argparse
import contextlib
import importlib.util
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from dense_oracle import pattern_mask  # noqa: E402

from lvsa import Geometry, PatternConfig, Planner, cli, step_context  # noqa: E402
from lvsa.bench import dit, dit_models  # noqa: E402
from lvsa_fixtures import dit_forward  # noqa: E402
from lvsa.bench.mask import mask_mod  # noqa: E402

CPU = torch.device("cpu")
PATTERN = dict(reference=4)  # 41 frames are 11 latent frames: sparse


def test_smoke_run_writes_rows_with_density_and_speedups(tmp_path, capsys):
    assert cli.main(["bench", "--dit", "--smoke", "--device", "cpu", "--frames", "41", "--reference", "4",
                     "--repeats", "1", "--methods", "diffusers", "lvsa-torch", "--out", str(tmp_path)]) == 0
    [path] = tmp_path.glob("dit_*.json")
    result = json.loads(path.read_text())
    assert result["model"] == "wan2.1-1.3b" and result["smoke"] and result["date"] in path.name
    assert result["card"].replace(" ", "_") in path.name
    rows = {f"{r['method']}:{r['mode']}": r for r in result["rows"]}
    assert set(rows) == {"diffusers:eager", "lvsa-torch:eager"}
    for row in rows.values():
        assert "error" not in row and row["latent_frames"] == 11 and row["forward_ms"] > 0
        assert row["kfi"] > 1 and 0 < row["density"] < 1
    lvsa_row, base = rows["lvsa-torch:eager"], rows["diffusers:eager"]
    assert lvsa_row["speedup"]["diffusers:eager"] == pytest.approx(base["forward_ms"] / lvsa_row["forward_ms"])
    assert "lvsa-torch:eager" in capsys.readouterr().out

    # The README table is rendered from this file: its cells are the file's numbers.
    spec = importlib.util.spec_from_file_location("dit_tables", Path(__file__).parents[2] / "docs" / "dit_tables.py")
    dit_tables = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dit_tables)
    table = dit_tables.tables(result)
    cells = (f"| 41 (11) | {base['density']:.2f} | {base['forward_ms'] / 1e3:.2f} | "
             f"{lvsa_row['forward_ms'] / 1e3:.2f} ({lvsa_row['speedup']['diffusers:eager']:.2f}x) |")
    assert cells in table and "diffusers:eager | lvsa-torch:eager |" in table


def test_denoising_loop_is_the_pipelines_with_guidance(tmp_path):
    """--steps N --cfg: N steps of the family's scheduler, each a conditional and an unconditional
    forward at that step's timestep, told the step (LVSA's keyframes rotate with it), and each
    step's guided prediction fed to the scheduler; the row gives the loop, a step and a forward."""
    spec = dit_models.model("wan2.1-1.3b")
    transformer = dit_models.build(spec, CPU, torch.float32, True)
    data = dit_models.inputs(spec, transformer, 41, CPU, torch.float32, True)
    unconditional = data.forward(data.latents, torch.zeros(1), False)["encoder_hidden_states"]
    seen = []

    def record(module, args, kwargs):
        cond = kwargs["encoder_hidden_states"] is not unconditional
        seen.append((step_context.current_step(), float(kwargs["timestep"][0]), cond))

    hook = transformer.register_forward_pre_hook(record, with_kwargs=True)
    try:
        out = dit.runner(transformer, spec, data, argparse.Namespace(steps=3, cfg=True), contextlib.nullcontext)()
    finally:
        hook.remove()
    scheduler = dit_models.scheduler(spec)
    scheduler.set_timesteps(3)
    assert seen == [(i, pytest.approx(float(t)), cond) for i, t in enumerate(scheduler.timesteps)
                    for cond in (True, False)]
    assert out.shape == data.latents.shape and not torch.equal(out, data.latents)

    assert dit.main(["--smoke", "--device", "cpu", "--frames", "41", "--reference", "4", "--steps", "2", "--cfg",
                     "--methods", "lvsa-torch", "--repeats", "1", "--warmup", "0", "--out", str(tmp_path)]) == 0
    [path] = tmp_path.glob("dit_*.json")
    result = json.loads(path.read_text())
    [row] = result["rows"]
    assert result["steps"] == 2 and result["cfg"] and "error" not in row
    assert row["step_ms"] == pytest.approx(row["loop_s"] * 1e3 / 2)
    assert row["forward_ms"] == pytest.approx(row["loop_s"] * 1e3 / 4)


def test_memory_search_finds_the_longest_length_that_runs():
    """--max-memory's search on the 4k+1 grid: the longest length that runs, from the shortest
    published one up to --max-frames, in few probes; None when even the shortest fails."""
    for limit in (1, 40, 41, 77, 200, 481, 10_000):
        probes = []

        def runs(frames):
            probes.append(frames)
            return frames <= limit

        found = dit.longest_running(runs, 4, 81, 481)
        expected = None if limit < 81 else min((limit - 1) // 4 * 4 + 1, 481)
        assert found == expected, (limit, probes)
        assert all((f - 1) % 4 == 0 and 81 <= f <= 481 for f in probes)
        assert len(probes) <= 2 + 7  # the shortest, the top, then halving 100 steps of the grid
    assert dit.longest_running(lambda frames: True, 4, 81, 481) == 481


def test_bad_arguments_are_refused_before_anything_is_built():
    with pytest.raises(SystemExit, match=r"--frames 80: lvsa: frames must be 4k\+1 .* nearest valid: 77 or 81"):
        dit.main(["--smoke", "--device", "cpu", "--frames", "80"])
    with pytest.raises(SystemExit, match="unknown --model 'wan'"):
        dit.main(["--smoke", "--device", "cpu", "--model", "wan"])
    with pytest.raises(SystemExit, match="unknown method 'sdpa'"):
        dit.Run.parse("sdpa")
    with pytest.raises(SystemExit, match="flex:compile is not supported"):
        dit.Run.parse("flex:compile")


def test_flex_mask_is_the_plan_with_padding_excluded():
    g = Geometry(11, 4, 6, "after")
    plan = Planner(g, PatternConfig(reference=4, window=1, n_first=1, keyframe_interval=3)).step(1)
    assert plan.frame_density < 1
    valid = [6, 2]
    allowed = mask_mod(plan, valid, CPU)
    qi, ki = torch.arange(g.seq_len)[:, None], torch.arange(g.seq_len)[None, :]
    got = torch.stack([allowed(torch.tensor(b), 0, qi, ki) for b in range(len(valid))])
    expected = pattern_mask(plan, g.seq_len, encoder_valid=torch.tensor(valid), batch=len(valid))
    # The oracle gives padded encoder queries no keys; FlexAttention's rows for them are unused.
    real_queries = torch.ones_like(expected)
    for b, n in enumerate(valid):
        real_queries[b, g.encoder_begin + n:] = False
    assert torch.equal(got & real_queries, expected & real_queries)
    assert not got[1, :, g.encoder_begin + 2:].any()  # padding is never a key


def _output(spec, transformer, data, method):
    return dit_forward(spec, transformer, data, method, PATTERN)


def test_dense_on_valid_tokens_is_the_models_masked_attention():
    spec = dit_models.model("hunyuanvideo-1.5-480p")
    transformer = dit_models.build(spec, CPU, torch.float32, smoke=True)
    data = dit_models.inputs(spec, transformer, 41, CPU, torch.float32, smoke=True)
    assert 0 < data.layout.encoder_valid < data.layout.encoder_len  # padded text: something to drop
    reference = _output(spec, transformer, data, "diffusers")
    torch.testing.assert_close(_output(spec, transformer, data, "dense-valid-flash"), reference,
                               atol=1e-5, rtol=1e-5)
    # LVSA's sparse pattern moves the output: the comparison can tell methods apart.
    assert not torch.allclose(_output(spec, transformer, data, "lvsa-torch"), reference, atol=1e-3)


def test_every_family_runs_in_bfloat16(tmp_path):
    """The GPU runs are bfloat16: each family's inputs must match the weights' dtype as its
    pipeline passes them (HunyuanVideo 1.5 takes its timestep in the latents' dtype)."""
    for model in ("wan2.1-1.3b", "hunyuanvideo-1.5-480p"):
        dit.main(["--smoke", "--device", "cpu", "--dtype", "bfloat16", "--model", model, "--frames", "41",
                  "--reference", "4", "--methods", "diffusers", "lvsa-torch", "--repeats", "1", "--warmup", "0",
                  "--out", str(tmp_path), "--name", model])
        [path] = tmp_path.glob(f"{model}_*.json")
        rows = json.loads(path.read_text())["rows"]
        assert rows and all("forward_ms" in row and "error" not in row for row in rows), rows


def test_flashinfer_method_says_not_installed_without_flashinfer(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "flashinfer", None)  # what Python does for a package that is absent
    assert dit.main(["--smoke", "--device", "cpu", "--frames", "41", "--reference", "4", "--repeats", "1",
                     "--methods", "lvsa-flashinfer", "--out", str(tmp_path)]) == 0
    [path] = tmp_path.glob("dit_*.json")
    [row] = json.loads(path.read_text())["rows"]
    assert row["method"] == "lvsa-flashinfer" and "error" not in row
    assert row["skipped"].startswith("not installed: backend 'flashinfer' needs FlashInfer: "
                                     "pip install 'lvsa[flashinfer]'")


def test_profile_kinds_file_kernels_by_what_they_do_not_what_inductor_names_them():
    from lvsa.bench.profile import kind_of

    # Names as torch.profiler reported them on an H200 (dit_wan_481_prologue_v4_…).
    assert kind_of("void lvsa::cuda::sm90::fwd_kernel<lvsa::cuda::sm90::Traits<__nv_bfloat16, 128, 176, 257") == "attention"
    assert kind_of("cudnn_generated_fort_native_sdpa_sm90_flash_fprop_wgmma_f16_knob_7_64x128x128") == "attention"
    assert kind_of("triton_tem_fused_flex_attention_0") == "attention"
    assert kind_of("void lvsa::cuda::(anonymous namespace)::norm_rope_kernel<__nv_bfloat16>") == "prologue"
    assert kind_of("nvjet_sm90_tst_192x192_64x4_2x1_v_bz_coopB_bias_TNN") == "gemm"
    assert kind_of("void at::native::unrolled_elementwise_kernel<at::native::direct_copy_kernel_cuda") == "copy"
    assert kind_of("triton_red_fused__to_copy_add_mul_native_layer_norm_split_0") == "elementwise/other"
    assert kind_of("triton_red_fused__fused_rms_norm__scaled_dot_product_cudnn_attention_permute_view_2") \
        == "elementwise/other"
    assert kind_of("triton_poi_fused_gelu_view_5") == "elementwise/other"
