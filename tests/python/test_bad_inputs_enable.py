"""``lvsa.enable``'s bad-input catalogue: knob values, ``LVSA_*`` environment text and targets it
cannot serve. Each row must be refused with the exception and a message naming the knob (or
variable, or target) and what was expected, and leave the pipeline as it was: its class, its
transformers' processors and hooks, and any earlier installation (refused before ``disable``)."""

import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import pytest

pytest.importorskip("diffusers")

import torch  # noqa: E402
from diffusers import FlowMatchEulerDiscreteScheduler, WanPipeline  # noqa: E402

import lvsa  # noqa: E402
import lvsa.settings  # noqa: E402
import tiny_diffusers as td  # noqa: E402


def _wan_pipeline(transformer="tiny"):
    transformer = td.wan().transformer if transformer == "tiny" else transformer
    return WanPipeline(tokenizer=None, text_encoder=None, vae=None, transformer=transformer,
                       scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0))


@dataclass(frozen=True)
class Bad:
    name: str
    knobs: dict
    error: type
    match: str
    env: dict = field(default_factory=dict)
    target: Optional[Callable[[], object]] = None  # None: each of TARGETS


ROWS = [
    # knobs given as arguments
    Bad("unknown_option", dict(windw=3), TypeError, r"unknown option\(s\) windw; known: window, n_first, "),
    Bad("window_negative", dict(window=-1), ValueError, r"window must be in \[0, \d+\], got -1"),
    Bad("window_float", dict(window=2.5), TypeError, r"window must be an int \(frames\), got float 2\.5"),
    Bad("window_bool", dict(window=True), TypeError, r"window must be an int \(frames\), got bool True"),  # was 1
    Bad("n_first_negative", dict(n_first=-2), ValueError, r"n_first must be in \[0, \d+\], got -2"),
    Bad("n_first_text", dict(n_first="4"), TypeError, r"n_first must be an int \(frames\), got str '4'"),
    Bad("keyframe_interval_zero", dict(keyframe_interval=0), ValueError,
        r"keyframe_interval must be 'auto', None or a positive int, got 0"),
    Bad("keyframe_interval_text", dict(keyframe_interval="often"), ValueError,
        r"keyframe_interval must be 'auto', None or a positive int, got 'often'"),
    Bad("reference_zero", dict(reference=0), ValueError, r"reference must be in \[1, \d+\], got 0"),
    Bad("reference_float", dict(reference=20.5), TypeError, r"reference must be an int \(frames\), got float 20\.5"),
    Bad("scale_zero", dict(scale=0.0), ValueError, r"scale must be a finite number in \(0, \d+\], got 0"),
    Bad("scale_nan", dict(scale=math.nan), ValueError, r"scale must be a finite number in \(0, \d+\], got nan"),
    Bad("scale_text", dict(scale="big"), TypeError, r"scale must be a number, got str 'big'"),
    Bad("expand_text", dict(expand="no"), TypeError, r"expand must be True or False, got str 'no'"),
    Bad("rotate_int", dict(rotate=1), TypeError, r"rotate must be True or False, got int 1"),
    Bad("strict_text", dict(strict="no"), TypeError, r"strict must be True or False, got str 'no'"),  # was True
    Bad("units_unknown", dict(units="frames"), ValueError, r"units must be 'latent' or 'video', got 'frames'"),
    Bad("video_units_negative_window", dict(units="video", window=-4), ValueError,
        r"window \(video frames\) must be in \[0, \d+\], got -4"),
    Bad("video_units_reference_zero", dict(units="video", reference=0), ValueError,
        r"reference must be a positive int, got 0"),
    Bad("backend_unknown", dict(backend="fast"), ValueError,
        r"backend must be one of auto, cpu, cuda, torch, reference, flashinfer, got 'fast'"),
    Bad("parallel_zero", dict(parallel=0), ValueError, r"parallel must be a process count >= 1 or 'auto', got 0"),
    Bad("parallel_without_process_group", dict(parallel=2), RuntimeError,
        r"parallel=2 needs torch\.distributed initialised \(launch with torchrun --nproc-per-node 2"),
    # LVSA_* environment variables
    Bad("env_window_text", {}, ValueError, r"LVSA_WINDOW='three' is not valid: expected an integer",
        env=dict(LVSA_WINDOW="three")),
    Bad("env_window_negative", {}, ValueError, r"window must be in \[0, \d+\], got -1", env=dict(LVSA_WINDOW="-1")),
    Bad("env_keyframe_interval_text", {}, ValueError,
        r"LVSA_KEYFRAME_INTERVAL='often' is not valid: expected auto, none or a positive integer",
        env=dict(LVSA_KEYFRAME_INTERVAL="often")),
    Bad("env_scale_text", {}, ValueError, r"LVSA_SCALE='lots' is not valid: expected a number",
        env=dict(LVSA_SCALE="lots")),
    Bad("env_expand_text", {}, ValueError,
        r"LVSA_EXPAND='maybe' is not valid: expected 1/0, true/false, yes/no or on/off", env=dict(LVSA_EXPAND="maybe")),
    Bad("env_strict_number", {}, ValueError,
        r"LVSA_STRICT='2' is not valid: expected 1/0, true/false, yes/no or on/off", env=dict(LVSA_STRICT="2")),
    Bad("env_units_unknown", {}, ValueError, r"units must be 'latent' or 'video', got 'frames'",
        env=dict(LVSA_UNITS="frames")),
    Bad("env_backend_unknown", {}, ValueError, r"backend must be one of auto, .*got 'gpu'",
        env=dict(LVSA_BACKEND="gpu")),
    Bad("env_parallel_text", {}, ValueError, r"LVSA_PARALLEL='many' is not valid: expected auto or a process count",
        env=dict(LVSA_PARALLEL="many")),
    # targets LVSA cannot serve
    Bad("target_not_a_pipeline", {}, TypeError, r"lvsa\.enable expects a diffusers pipeline or transformer, got object",
        target=object),
    Bad("pipeline_without_transformer", {}, TypeError,
        r"lvsa: WanPipeline has no transformer component; supported: WanTransformer3DModel \(wan\)",
        target=lambda: _wan_pipeline(transformer=None)),
    Bad("pipeline_with_unsupported_transformer", {}, TypeError,
        r"lvsa: WanPipeline: transformer \(Linear\) is not supported; supported: WanTransformer3DModel",
        target=lambda: _wan_pipeline(transformer=torch.nn.Linear(2, 2))),
    Bad("unsupported_module", {}, TypeError, r"lvsa: Linear: transformer \(Linear\) is not supported",
        target=lambda: torch.nn.Linear(2, 2)),
]


def _state(target):
    """What enable would change: the class, the handle, each transformer's processors and hooks."""
    if isinstance(target, torch.nn.Module):
        modules = {"transformer": target}
    else:
        modules = {name: c for name, c in getattr(target, "components", {}).items() if isinstance(c, torch.nn.Module)}
    return (type(target), getattr(target, "_lvsa_handle", None),
            {name: (dict(getattr(m, "attn_processors", {})), list(m._forward_pre_hooks.values()),
                    list(m._forward_hooks.values())) for name, m in modules.items()})


@pytest.fixture(autouse=True)
def no_lvsa_environment(monkeypatch):
    for name in lvsa.settings._KNOBS:
        monkeypatch.delenv(f"LVSA_{name.upper()}", raising=False)


# Default targets: a fresh pipeline, one already enabled (that installation must survive), a bare transformer.
TARGETS = ("pipeline", "enabled_pipeline", "transformer")


@pytest.mark.parametrize("row, target_kind", [pytest.param(row, kind, id=f"{row.name}-{kind}") for row in ROWS
                                              for kind in (TARGETS if row.target is None else ("own",))])
def test_refused_and_nothing_changed(row, target_kind, monkeypatch):
    if row.target is not None:
        target = row.target()
    else:
        target = td.wan().transformer if target_kind == "transformer" else _wan_pipeline()
        if target_kind == "enabled_pipeline":
            lvsa.enable(target, **td.SPARSE)
    before = _state(target)
    for variable, text in row.env.items():
        monkeypatch.setenv(variable, text)

    with pytest.raises(row.error, match=row.match) as raised:
        lvsa.enable(target, **row.knobs)

    assert str(raised.value).startswith("lvsa")
    assert _state(target) == before


def test_catalogue_size():
    assert len(ROWS) >= 10 and len({row.name for row in ROWS}) == len(ROWS)
