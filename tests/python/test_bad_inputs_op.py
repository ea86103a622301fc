"""``lvsa.attention``'s bad-input catalogue: each row is a call that must be refused with the
exception and a message naming the argument and what was expected, on every CPU backend, before
any work (no backend allocated an output) and without touching the inputs."""

import math
from dataclasses import dataclass
from typing import Callable

import pytest
import torch

import lvsa
from lvsa.backends import _common

BACKENDS = ("cpu", "torch", "reference")
B, T, P, E, HQ, HKV, D = 2, 8, 4, 3, 4, 2, 64
S = T * P + E  # 35


class Inputs:
    """Fresh random q, k, v for a plan of T=8 frames of P=4 tokens and 3 encoder tokens after
    them, that plan's Planner, and a plan of the same video without encoder tokens."""

    def __init__(self):
        g = torch.Generator().manual_seed(11)
        self.q = torch.randn((B, S, HQ, D), generator=g)
        self.k = torch.randn((B, S, HKV, D), generator=g)
        self.v = torch.randn((B, S, HKV, D), generator=g)
        self.planner = lvsa.Planner(lvsa.Geometry(T, P, E, "after"), lvsa.PatternConfig(reference=3))
        self.plan = self.planner.step(0)
        self.plan_without_encoder = lvsa.Planner(lvsa.Geometry(T, P), lvsa.PatternConfig(reference=3)).step(0)

    def call(self, **changes) -> dict:
        """A valid call's arguments with ``changes`` applied."""
        return dict(q=self.q, k=self.k, v=self.v, plan=self.plan) | changes


@dataclass(frozen=True)
class Bad:
    name: str
    call: Callable[[Inputs], dict]
    error: type
    match: str
    backends: tuple = BACKENDS  # (None,): the row picks its own backend


def _kv(x, f):
    return dict(k=f(x.k), v=f(x.v))


def _all(x, f):
    return dict(q=f(x.q), **_kv(x, f))


ROWS = [
    # q, k, v themselves
    Bad("q_not_a_tensor", lambda x: x.call(q=x.q.tolist()), TypeError, r"q must be a torch\.Tensor, got list"),
    Bad("v_numpy_array", lambda x: x.call(v=x.v.numpy()), TypeError, r"v must be a torch\.Tensor, got ndarray"),
    Bad("q_3_dims", lambda x: x.call(q=x.q[0]), ValueError,
        r"q must be \[B, S, H, D\] \(4 dims\), got shape \(35, 4, 64\)"),
    Bad("k_5_dims", lambda x: x.call(k=x.k[None]), ValueError,
        r"k must be \[B, S, H, D\] \(4 dims\), got shape \(1, 2, 35, 2, 64\)"),
    Bad("batch_0", lambda x: x.call(**_all(x, lambda t: t[:0])), ValueError,
        r"q must have every size of \[B, S, H, D\] >= 1, got shape \(0, 35, 4, 64\)"),
    Bad("q_heads_0", lambda x: x.call(q=x.q[:, :, :0]), ValueError,
        r"q must have every size of \[B, S, H, D\] >= 1, got shape \(2, 35, 0, 64\)"),
    Bad("kv_heads_0", lambda x: x.call(**_kv(x, lambda t: t[:, :, :0])), ValueError,  # was ZeroDivisionError
        r"k must have every size of \[B, S, H, D\] >= 1, got shape \(2, 35, 0, 64\)"),
    Bad("head_dim_0", lambda x: x.call(**_all(x, lambda t: t[..., :0])), ValueError,
        r"q must have every size of \[B, S, H, D\] >= 1, got shape \(2, 35, 4, 0\)"),
    Bad("k_on_another_device", lambda x: x.call(k=x.k.to("meta")), ValueError,
        r"k is on meta but q is on cpu; all must share a device"),
    Bad("k_dtype_differs", lambda x: x.call(k=x.k.half()), ValueError,
        r"k has dtype torch\.float16, expected q's dtype torch\.float32"),
    Bad("int32", lambda x: x.call(**_all(x, lambda t: (t * 10).int())), ValueError,
        r"q must be float32, float16 or bfloat16, got torch\.int32"),
    Bad("float64", lambda x: x.call(**_all(x, torch.Tensor.double)), ValueError,
        r"q must be float32, float16 or bfloat16, got torch\.float64"),
    # shapes against the plan and each other
    Bad("k_seq_len", lambda x: x.call(k=x.k[:, :30]), ValueError,
        r"k and v must have seq_len = T\*P \+ encoder_len = 35 tokens .*got 30 and 35"),
    Bad("plan_of_another_geometry",
        lambda x: x.call(plan=lvsa.Planner(lvsa.Geometry(9, 4, 3, "after")).step(0)), ValueError,
        r"k and v must have seq_len = T\*P \+ encoder_len = 39 tokens for this plan \(T=9, P=4, encoder=3\)"),
    Bad("q_neither_whole_nor_video", lambda x: x.call(q=x.q[:, :20]), ValueError,
        r"q must cover the whole sequence \(35 tokens\) or the video tokens only \(32\), got 20"),
    Bad("k_v_shapes_differ", lambda x: x.call(v=x.v[..., :32]), ValueError,
        r"k and v must have the same shape, got \(2, 35, 2, 64\) and \(2, 35, 2, 32\)"),
    Bad("batch_differs", lambda x: x.call(**_kv(x, lambda t: t[:1])), ValueError,
        r"k and v have batch size 1, expected q's 2"),
    Bad("head_dim_differs", lambda x: x.call(**_kv(x, lambda t: t[..., :32])), ValueError,
        r"k and v have head_dim 32, expected q's 64"),
    Bad("q_heads_not_a_multiple", lambda x: x.call(**_kv(x, lambda t: t[:, :, :1].expand(B, S, 3, D))), ValueError,
        r"q heads \(4\) must be a multiple of k/v heads \(3\)"),
    # encoder_valid: integers in [0, encoder_len], one per batch entry, never rounded or wrapped
    Bad("encoder_valid_floats", lambda x: x.call(encoder_valid=[2.7, 1.0]), TypeError,  # was truncated to [2, 1]
        r"encoder_valid must be an int or a sequence of 2 ints .*got torch\.float32 values"),
    Bad("encoder_valid_float", lambda x: x.call(encoder_valid=2.0), TypeError,
        r"encoder_valid must be an int or a sequence of 2 ints .*got torch\.float32 values 2\.0"),
    Bad("encoder_valid_float_tensor", lambda x: x.call(encoder_valid=torch.tensor([3.0, 1.0], dtype=torch.float64)),
        TypeError, r"encoder_valid must be an int or a sequence of 2 ints .*got torch\.float64 values \[3\.0, 1\.0\]"),
    Bad("encoder_valid_bool", lambda x: x.call(encoder_valid=True), TypeError,
        r"encoder_valid must be an int or a sequence of 2 ints .*got the bool True"),
    Bad("encoder_valid_bool_in_list", lambda x: x.call(encoder_valid=[True, 2]), TypeError,
        r"encoder_valid must be an int or a sequence of 2 ints .*got bools \[True, 2\]"),
    Bad("encoder_valid_bool_tensor", lambda x: x.call(encoder_valid=torch.tensor([True, False])), TypeError,
        r"encoder_valid must be an int or a sequence of 2 ints .*got torch\.bool values \[True, False\]"),
    Bad("encoder_valid_text", lambda x: x.call(encoder_valid="3"), TypeError,
        r"encoder_valid must be an int or a sequence of 2 ints .*got '3'"),
    Bad("encoder_valid_wrong_length", lambda x: x.call(encoder_valid=[1, 2, 3]), ValueError,
        r"encoder_valid must have one entry per batch \(2\), got 3"),
    Bad("encoder_valid_2_dims", lambda x: x.call(encoder_valid=torch.tensor([[1], [2]])), ValueError,
        r"encoder_valid must be 1-D, one entry per batch \(2\), got shape \(2, 1\)"),
    Bad("encoder_valid_negative", lambda x: x.call(encoder_valid=[-1, 2]), ValueError,
        r"encoder_valid entries must be in \[0, encoder_len = 3\], got \[-1, 2\]"),
    Bad("encoder_valid_above_encoder_len", lambda x: x.call(encoder_valid=[4, 1]), ValueError,
        r"encoder_valid entries must be in \[0, encoder_len = 3\], got \[4, 1\]"),
    Bad("encoder_valid_wraps_in_int32", lambda x: x.call(encoder_valid=[2**32 + 1, 1]), ValueError,  # was 1
        r"encoder_valid entries must be in \[0, encoder_len = 3\], got \[4294967297, 1\]"),
    Bad("encoder_valid_without_encoder",
        lambda x: x.call(**_all(x, lambda t: t[:, :T * P]), plan=x.plan_without_encoder, encoder_valid=[1, 0]),
        ValueError, r"encoder_valid must be 0 or None for a plan without encoder tokens, got \[1, 0\]"),
    # scale
    *(Bad(f"scale_{name}", lambda x, value=value: x.call(scale=value), ValueError,
          rf"scale must be a finite positive number, got {shown}")
      for name, value, shown in (("zero", 0.0, r"0\.0"), ("negative", -1.0, r"-1\.0"), ("nan", math.nan, "nan"),
                                 ("inf", math.inf, "inf"))),
    Bad("scale_text", lambda x: x.call(scale="0.1"), TypeError,
        r"scale must be a finite positive number, got str '0\.1'"),
    Bad("scale_bool", lambda x: x.call(scale=True), TypeError,
        r"scale must be a finite positive number, got bool True"),
    # plan and step
    Bad("planner_without_step", lambda x: x.call(plan=x.planner), ValueError,
        r"attention\(plan=Planner\) needs step= \(the denoising step index\)"),
    Bad("step_negative", lambda x: x.call(plan=x.planner, step=-1), ValueError, r"step must be an int >= 0, got -1"),
    Bad("step_not_an_int", lambda x: x.call(plan=x.planner, step=1.5), ValueError,
        r"step must be an int >= 0, got 1\.5"),
    Bad("step_with_a_step_plan", lambda x: x.call(step=0), ValueError,
        r"step= is only meaningful with a Planner; this StepPlan is one step already"),
    Bad("plan_a_geometry", lambda x: x.call(plan=x.plan.geometry), TypeError,
        r"plan must be a Planner or StepPlan, got Geometry"),
    Bad("plan_none", lambda x: x.call(plan=None), TypeError, r"plan must be a Planner or StepPlan, got NoneType"),
    # flags and backend
    Bad("return_lse_text", lambda x: x.call(return_lse="yes"), TypeError,  # torch backend returned lse None
        r"return_lse must be True or False, got str 'yes'"),
    Bad("strict_text", lambda x: x.call(strict="no"), TypeError,  # was taken as strict=True
        r"strict must be True or False, got str 'no'"),
    Bad("backend_unknown", lambda x: x.call(backend="tpu"), ValueError,
        r"backend must be one of auto, cpu, cuda, torch, reference, flashinfer, got 'tpu'", backends=(None,)),
    Bad("backend_cuda_for_cpu_tensors", lambda x: x.call(backend="cuda"), RuntimeError,
        r"backend 'cuda' (needs CUDA tensors, got cpu|is not built in this installation)", backends=(None,)),
]


def _tensors(arguments: dict):
    return {name: t for name, t in arguments.items() if isinstance(t, torch.Tensor) and t.device.type != "meta"}


@pytest.mark.parametrize("row, backend", [pytest.param(row, backend, id=f"{row.name}-{backend or 'own'}")
                                          for row in ROWS for backend in row.backends])
def test_refused_before_any_work(row, backend, monkeypatch):
    allocations = []
    allocate = _common.allocate_outputs

    def counting(q, return_lse):
        allocations.append(tuple(q.shape))
        return allocate(q, return_lse)

    monkeypatch.setattr(_common, "allocate_outputs", counting)
    x = Inputs()
    arguments = row.call(x)
    if backend is not None:
        arguments["backend"] = backend
    inputs = {"q": x.q, "k": x.k, "v": x.v} | {f"argument {n}": t for n, t in _tensors(arguments).items()}
    before = {name: t.clone() for name, t in inputs.items()}

    with pytest.raises(row.error, match=row.match) as raised:
        lvsa.attention(**arguments)

    assert str(raised.value).startswith("lvsa: ")
    assert not allocations, "a backend ran (allocated its outputs) before the input was refused"
    for name, t in inputs.items():
        assert torch.equal(t, before[name]), f"{name} changed"


def test_catalogue_size():
    assert len(ROWS) >= 40 and len({row.name for row in ROWS}) == len(ROWS)
