"""Model-based metrics load local weights only: tiny random CLIP and DINOv2 models built from
configs and saved with ``save_pretrained`` load through ``--clip`` / ``--dino``, and their scores
match the same computation done through each model's own forward pass; wrong folders are refused."""

import json

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("av")

import torch  # noqa: E402

import synthetic_videos as sv  # noqa: E402
from lvsa.eval import models  # noqa: E402
from lvsa.eval.reader import EvalError  # noqa: E402


def _clip_tokenizer():
    """A CLIP BPE tokenizer with no merges over every byte (plus its end-of-word form)."""
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    symbols = list(bytes_to_unicode().values())
    vocab = {token: i for i, token in enumerate(["<|startoftext|>", "<|endoftext|>"] + symbols
                                                + [s + "</w>" for s in symbols])}
    return CLIPTokenizer(vocab=vocab, merges=[])


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    folder = tmp_path_factory.mktemp("clip")
    tokenizer = _clip_tokenizer()
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=64, bos_token_id=0, eos_token_id=1,
                         pad_token_id=1),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=16)
    CLIPModel(config).save_pretrained(folder)
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def dino_folder(tmp_path_factory):
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    folder = tmp_path_factory.mktemp("dino")
    torch.manual_seed(0)
    Dinov2Model(Dinov2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                             image_size=32, patch_size=8)).save_pretrained(folder)
    BitImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def test_clip_metrics_match_the_model_forward(clip_folder):
    model, processor = models.load_clip(clip_folder)
    frames = sv.pan(20)
    groups, curves = models.clip_metrics(frames, model, processor, "a red fox runs")
    iqa = groups["clip_iqa"]["metrics"]["clip_iqa"]
    alignment = groups["text_alignment"]["metrics"]["clip_text_alignment"]
    assert iqa["frames"] == 16 and len(curves["clip_iqa"]) == 16

    chosen = curves["clip_frames"]
    inputs = processor(text=["Good photo.", "Bad photo.", "a red fox runs"], images=list(frames[chosen]),
                       return_tensors="pt", padding=True)
    with torch.inference_mode():
        output = model(**inputs)  # CLIPModel.forward normalises both embeddings itself
    cosine = (output.image_embeds @ output.text_embeds.T).numpy()
    good = np.exp(100 * cosine[:, 0]) / (np.exp(100 * cosine[:, 0]) + np.exp(100 * cosine[:, 1]))
    np.testing.assert_allclose(curves["clip_iqa"], good, rtol=1e-4, atol=1e-6)
    assert iqa["value"] == pytest.approx(good.mean(), rel=1e-4) and iqa["score"] == pytest.approx(good.mean(), rel=1e-4)
    np.testing.assert_allclose(curves["clip_text_alignment"], cosine[:, 2], rtol=1e-4, atol=1e-6)
    assert alignment["score"] == pytest.approx(min(1.0, 2.5 * max(0.0, cosine[:, 2].mean())), abs=1e-5)


def test_clip_without_a_prompt_has_no_text_alignment(clip_folder):
    groups, _ = models.clip_metrics(sv.pan(4), *models.load_clip(clip_folder), None)
    assert set(groups) == {"clip_iqa"}


def test_dino_subject_consistency_matches_the_model_forward(dino_folder):
    model, processor = models.load_dino(dino_folder)
    frames = np.concatenate([sv.pan(6), sv.pan(6, seed=1)])  # the subject changes half-way
    groups, curves = models.subject_consistency(frames, model, processor)
    with torch.inference_mode():
        cls = model(**processor(images=list(frames), return_tensors="pt")).last_hidden_state[:, 0]
    # Dinov2Model's pooled output is the layer-normed CLS token; the last hidden state is already normed.
    cls = torch.nn.functional.normalize(cls, dim=1)
    expected = [(float(cls[t] @ cls[0]) + float(cls[t] @ cls[t - 1])) / 2 for t in range(1, len(frames))]
    np.testing.assert_allclose(curves["dino_subject_consistency"], expected, rtol=1e-4, atol=1e-6)
    metric = groups["subject_consistency"]["metrics"]["dino_subject_consistency"]
    assert metric["value"] == pytest.approx(np.mean(expected), rel=1e-4)


def test_a_constant_video_is_perfectly_consistent(dino_folder):
    groups, _ = models.subject_consistency(sv.frozen(5), *models.load_dino(dino_folder))
    assert groups["subject_consistency"]["metrics"]["dino_subject_consistency"]["value"] == pytest.approx(1.0, abs=1e-5)


def test_wrong_model_folders_are_refused(clip_folder, dino_folder, tmp_path):
    with pytest.raises(EvalError, match=r"--clip .*missing is not a folder"):
        models.load_clip(tmp_path / "missing")
    with pytest.raises(EvalError, match=r"--dino .* has no config.json"):
        models.load_dino(tmp_path)
    with pytest.raises(EvalError, match=r"--clip .* holds a 'dinov2' model, expected 'clip'"):
        models.load_clip(dino_folder)
    with pytest.raises(EvalError, match=r"--dino .* holds a 'clip' model, expected 'dinov2'"):
        models.load_dino(clip_folder)
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.json").write_text(json.dumps(json.loads((clip_folder / "config.json").read_text())))
    with pytest.raises(EvalError, match=r"--clip .*bare: no usable tokenizer and image processor"):
        models.load_clip(bare)


def test_lvsa_eval_with_both_models(clip_folder, dino_folder, tmp_path):
    from lvsa.cli import main

    video = sv.write(sv.pan(12), tmp_path / "pan.mp4")
    assert main(["eval", str(video), "--clip", str(clip_folder), "--dino", str(dino_folder), "--prompt", "a fox",
                 "--device", "cpu", "--out", str(tmp_path / "eval")]) == 0
    report = json.loads((tmp_path / "eval" / "pan" / "report.json").read_text())
    assert {"clip_iqa", "text_alignment", "subject_consistency"} <= set(report["groups"])
    weights = report["composite"]["weights"]
    assert set(weights) == {"loop", "temporal", "dynamics", "spatial", "clip_iqa", "text_alignment",
                            "subject_consistency"}  # no reference: its 0.10 is spread over the rest
    assert weights["clip_iqa"] == pytest.approx(0.05 / 0.90) and sum(weights.values()) == pytest.approx(1.0)
    assert len(report["curves"]["dino_subject_consistency"]) == 11
