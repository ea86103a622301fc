"""NaN and Inf in q, k, v follow float softmax: they make exactly the output rows that attend to
them non-finite, and leave every other row as it was; in encoder padding (beyond
``encoder_valid``) they are never read. Checked per backend against the plan's attended frames,
on fresh random inputs with the poison placed at chosen tokens, heads and dims."""

import pytest
import torch

import lvsa

from dense_oracle import pattern_mask

BACKENDS = ("cpu", "torch", "reference")

# name: (T, P, encoder_len, side, config, step, B, Hq, Hkv, D, encoder_valid, video_queries_only)
CASES = {
    # Window only: ragged key lists, and frame 0 is not attended by the far frames.
    "window_ragged": (10, 3, 4, "after", dict(window=1, n_first=0, keyframe_interval=None, expand=False), 0,
                      2, 2, 1, 64, [4, 2], False),
    "rotating_keyframes": (12, 5, 6, "before", dict(reference=4), 1, 1, 2, 2, 64, [5], False),
    "gqa_no_encoder": (9, 4, 0, "none", dict(window=1, reference=4), 0, 1, 4, 2, 32, None, False),
    "video_queries_only": (8, 3, 5, "before", dict(window=1, reference=3), 0, 1, 2, 2, 64, [3], True),
    # No window and no global frames: video queries attend to the encoder tokens only.
    "no_frames_attended": (6, 3, 5, "after", dict(window=0, n_first=0, keyframe_interval=None), 0,
                           1, 2, 1, 64, [4], False),
}


class Case:
    def __init__(self, name, dtype):
        T, P, E, side, config, step, B, Hq, Hkv, D, valid, video_only = CASES[name]
        self.plan = lvsa.Planner(lvsa.Geometry(T, P, E, side), lvsa.PatternConfig(**config)).step(step)
        self.g = self.plan.geometry
        self.valid, self.group = valid, Hq // Hkv
        Sq = self.g.video_tokens if video_only else self.g.seq_len
        gen = torch.Generator().manual_seed(list(CASES).index(name))
        self.q = torch.randn((B, Sq, Hq, D), generator=gen).to(dtype)
        self.k = torch.randn((B, self.g.seq_len, Hkv, D), generator=gen).to(dtype)
        self.v = torch.randn((B, self.g.seq_len, Hkv, D), generator=gen).to(dtype)
        self.mask = pattern_mask(self.plan, Sq, valid, B)  # [B, Sq, Sk]

    def run(self, backend, return_lse, q=None, k=None, v=None):
        out = lvsa.attention(self.q if q is None else q, self.k if k is None else k, self.v if v is None else v,
                             self.plan, encoder_valid=self.valid, backend=backend, return_lse=return_lse)
        return out[0] if return_lse else out

    def no_rows(self):
        return torch.zeros(self.q.shape[:3], dtype=torch.bool)

    def key_positions(self):
        """Key tokens to poison: one in each video frame, and one valid encoder token per batch."""
        g = self.g
        spots = [(0, g.video_begin + f * g.tokens_per_frame + f % g.tokens_per_frame) for f in range(g.frames)]
        if g.encoder_len:
            spots += [(b, g.encoder_begin + n - 1) for b, n in enumerate(self.valid) if n > 0]
        return spots

    def padding_positions(self):
        g = self.g
        return [(b, g.encoder_begin + j) for b, n in enumerate(self.valid or []) for j in range(n, g.encoder_len)]


def _expect(out, clean, bad_rows, zeros_allowed=False, unchanged=None):
    """``bad_rows`` [B, Sq, Hq]: exactly these rows are non-finite (or, with ``zeros_allowed``,
    exactly zero); the ``unchanged`` rows (default: all others) equal the clean run."""
    nonfinite = ~torch.isfinite(out).all(-1)
    if zeros_allowed:
        nonfinite |= bad_rows & (out == 0).all(-1)
    assert torch.equal(nonfinite, bad_rows), (
        f"non-finite rows {nonfinite.nonzero().tolist()} != expected {bad_rows.nonzero().tolist()}")
    unchanged = ~bad_rows if unchanged is None else unchanged
    assert torch.equal(out[unchanged], clean[unchanged])


def _sdpa_half(backend, dtype, return_lse):
    """PyTorch's CPU SDPA kernel in bfloat16/float16 (the torch backend without lse) returns
    zeros, not NaN, for a row whose largest score is +inf (README, the attention op)."""
    return backend == "torch" and not return_lse and dtype != torch.float32


def _params():
    return [pytest.param(backend, name, dtype, return_lse, id=f"{backend}-{name}-{str(dtype)[6:]}-lse{int(return_lse)}")
            for backend in BACKENDS for name in CASES for dtype in (torch.float32, torch.bfloat16)
            for return_lse in (False, True) if backend == "torch" or not return_lse]


@pytest.mark.parametrize("backend, name, dtype, return_lse", _params())
@pytest.mark.parametrize("poison", [float("nan"), -float("nan"), float("inf")], ids=["nan", "negative_nan", "inf"])
def test_poisoned_value_reaches_exactly_the_rows_attending_it(backend, name, dtype, return_lse, poison):
    case = Case(name, dtype)
    clean = case.run(backend, return_lse)
    for b, j in case.key_positions():
        v = case.v.clone()
        kv_head = j % v.shape[2]
        v[b, j, kv_head, 3] = poison
        bad = case.no_rows()
        heads = slice(kv_head * case.group, (kv_head + 1) * case.group)
        bad[b, :, heads] = case.mask[b, :, j, None]
        _expect(case.run(backend, return_lse, v=v), clean, bad)


@pytest.mark.parametrize("backend, name, dtype, return_lse", _params())
@pytest.mark.parametrize("poison", [float("nan"), -float("nan")], ids=["nan", "negative_nan"])
def test_nan_key_reaches_exactly_the_rows_attending_it(backend, name, dtype, return_lse, poison):
    case = Case(name, dtype)
    clean = case.run(backend, return_lse)
    for b, j in case.key_positions():
        k = case.k.clone()
        kv_head = (j + 1) % k.shape[2]
        k[b, j, kv_head, 5] = poison
        bad = case.no_rows()
        heads = slice(kv_head * case.group, (kv_head + 1) * case.group)
        bad[b, :, heads] = case.mask[b, :, j, None]
        _expect(case.run(backend, return_lse, k=k), clean, bad)


@pytest.mark.parametrize("backend, name, dtype, return_lse", _params())
def test_infinite_key_poisons_the_rows_whose_score_is_plus_inf(backend, name, dtype, return_lse):
    """k = +inf in one dim gives the score +inf (softmax NaN) where q's dim is positive and -inf
    (weight 0, the row stays finite) where it is negative."""
    case = Case(name, dtype)
    clean = case.run(backend, return_lse)
    for b, j in case.key_positions():
        k = case.k.clone()
        kv_head = j % k.shape[2]
        k[b, j, kv_head, 7] = float("inf")
        bad = case.no_rows()
        heads = slice(kv_head * case.group, (kv_head + 1) * case.group)
        bad[b, :, heads] = case.mask[b, :, j, None] & (case.q[b, :, heads, 7] > 0)
        attending = case.no_rows()
        attending[b, :, heads] = case.mask[b, :, j, None]
        out = case.run(backend, return_lse, k=k)
        # Rows scoring -inf stay finite but lost a key (weight 0): only the others are unchanged.
        _expect(out, clean, bad, zeros_allowed=_sdpa_half(backend, dtype, return_lse), unchanged=~attending)


@pytest.mark.parametrize("backend, name, dtype, return_lse", _params())
@pytest.mark.parametrize("poison", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_poisoned_query_stays_in_its_row(backend, name, dtype, return_lse, poison):
    case = Case(name, dtype)
    clean = case.run(backend, return_lse)
    has_keys = case.mask.any(-1)  # padded encoder query rows have no keys and return zeros
    B, Sq, Hq, _ = case.q.shape
    for i in range(0, Sq, max(1, Sq // 7)):
        q = case.q.clone()
        b, h = i % B, i % Hq
        q[b, i, h, 1] = poison
        bad = case.no_rows()
        bad[b, i, h] = has_keys[b, i]
        _expect(case.run(backend, return_lse, q=q), clean, bad,
                zeros_allowed=poison == float("inf") and _sdpa_half(backend, dtype, return_lse))


@pytest.mark.parametrize("backend, name, dtype, return_lse", _params())
def test_encoder_padding_is_never_read(backend, name, dtype, return_lse):
    """NaN and Inf in every padded encoder key, value and query leave the output bit-identical."""
    case = Case(name, dtype)
    padding = case.padding_positions()
    if not padding:
        pytest.skip("no encoder padding in this case")
    clean = case.run(backend, return_lse)
    q, k, v = case.q.clone(), case.k.clone(), case.v.clone()
    for n, (b, j) in enumerate(padding):
        k[b, j] = float("inf") if n % 2 else float("nan")
        v[b, j] = float("nan") if n % 2 else float("inf")
        if q.shape[1] == case.g.seq_len:
            q[b, j] = float("nan")
    assert torch.equal(case.run(backend, return_lse, q=q, k=k, v=v), clean)
