"""Geometry, pattern configuration and per-step plans (the Python face of the C++ planner)."""

from __future__ import annotations

import itertools
import weakref
from dataclasses import dataclass
from typing import Union

from . import _native

KeyframeInterval = Union[int, str, None]


@dataclass(frozen=True)
class Geometry:
    """Token layout of one attention call: ``frames`` latent frames of ``tokens_per_frame``
    tokens (frame-major) and ``encoder_len`` encoder tokens ``"before"`` or ``"after"`` them."""

    frames: int
    tokens_per_frame: int
    encoder_len: int = 0
    encoder_side: str = "none"

    @classmethod
    def from_model(cls, model: str, frames: int, height: int, width: int) -> "Geometry":
        """Geometry of a preset (see :func:`model_presets`) for a video of ``frames`` frames."""
        return cls(*_native.model_geometry(model, frames, height, width))

    @property
    def video_tokens(self) -> int:
        return self.frames * self.tokens_per_frame

    @property
    def seq_len(self) -> int:
        return self.video_tokens + self.encoder_len

    @property
    def video_begin(self) -> int:
        return self.encoder_len if self.encoder_side == "before" else 0

    @property
    def encoder_begin(self) -> int:
        return 0 if self.encoder_side == "before" else self.video_tokens


@dataclass(frozen=True)
class PatternConfig:
    """The pattern's knobs in latent frames (spec: ``window`` W, ``n_first``, ``keyframe_interval``
    — ``"auto"``, a positive int, or ``None`` for no periodic keyframes — ``reference`` R,
    ``scale`` s, ``expand``, ``rotate``)."""

    window: int = 3
    n_first: int = 1
    keyframe_interval: KeyframeInterval = "auto"
    reference: int = 21
    scale: float = 1.0
    expand: bool = True
    rotate: bool = True

    @classmethod
    def from_video_frames(
        cls,
        window: int = 12,
        n_first: int = 4,
        keyframe_interval: KeyframeInterval = "auto",
        vae_temporal: int = 4,
        **latent_fields,
    ) -> "PatternConfig":
        """Build from the knobs users type in video frames (window 12 → 3 latent, ...)."""
        w, n, k = _native.to_latent_knobs(window, n_first, _kfi_code(keyframe_interval), vae_temporal)
        return cls(window=w, n_first=n, keyframe_interval=_kfi_value(k), **latent_fields)

    def core_kwargs(self) -> dict:
        return dict(
            window=self.window,
            n_first=self.n_first,
            keyframe_interval=_kfi_code(self.keyframe_interval),
            reference=self.reference,
            scale=float(self.scale),
            expand=self.expand,
            rotate=self.rotate,
        )


def _kfi_code(value: KeyframeInterval) -> int:
    if value == "auto":
        return _native.AUTO_KEYFRAMES
    if value is None:
        return _native.NO_KEYFRAMES
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"lvsa: keyframe_interval must be 'auto', None or a positive int, got {value!r}")
    return value


def _kfi_value(code: int) -> KeyframeInterval:
    return "auto" if code == _native.AUTO_KEYFRAMES else None if code == _native.NO_KEYFRAMES else code


# Plans by id, for the custom op, whose schema cannot carry host objects. Registration
# happens when a plan is built (not per call) so that torch.compile traces a plain attribute
# read; a plan stays findable while its Planner, which caches it, is alive.
_registry: "weakref.WeakValueDictionary[int, StepPlan]" = weakref.WeakValueDictionary()
_ids = itertools.count(1)


def plan_by_id(plan_id: int) -> "StepPlan":
    plan = _registry.get(plan_id)
    if plan is None:
        raise RuntimeError(f"lvsa: plan {plan_id} no longer exists (its Planner was released)")
    return plan


class StepPlan:
    """The pattern of one rotation offset: frame-level view and the key ranges kernels walk.

    ``core`` is the C++ planner's plan object (``lvsa._native.CorePlan``), which the compiled
    backends take as it is. ``key`` identifies the pattern (geometry, configuration, offset);
    backends use it to cache derived data such as device copies of the ranges.
    """

    def __init__(self, geometry: Geometry, config: PatternConfig, core):
        self.geometry = geometry
        self.config = config
        self.core = core
        self.kfi: int = core.kfi
        self.offset: int = core.offset
        self.globals: list[int] = list(core.globals)
        self.range_offsets = core.range_offsets
        self.range_begin = core.range_begin
        self.range_end = core.range_end
        self.key = (geometry, config, self.offset)
        self.cache: dict = {}  # per-backend derived data, keyed by the backend
        self.id = next(_ids)
        _registry[self.id] = self

    def attended(self, frame: int) -> list[int]:
        """Sorted key frames query frame ``frame`` attends to (encoder tokens not included)."""
        return self.core.attended(frame)

    @property
    def frame_density(self) -> float:
        return self.core.frame_density

    def work(self, heads: int, head_dim: int) -> dict:
        """Attended pairs and forward FLOPs, sparse vs dense (at full encoder length)."""
        return self.core.work(heads, head_dim)

    def __repr__(self) -> str:
        g = self.geometry
        return (f"StepPlan(T={g.frames}, P={g.tokens_per_frame}, encoder={g.encoder_len} {g.encoder_side}, "
                f"kfi={self.kfi}, offset={self.offset}, globals={len(self.globals)}, "
                f"frame_density={self.frame_density:.3f})")


class Planner:
    """Plans for one geometry and configuration across denoising steps.

    ``planner.step(i)`` is the pattern of denoising step ``i`` (offset ``i mod kfi``, spec §5).
    Plans are built once per offset and reused, so stepping costs nothing after warm-up.
    """

    def __init__(self, geometry: Geometry, config: PatternConfig | None = None):
        self.geometry = geometry
        self.config = config or PatternConfig()
        self._plans: dict[int, StepPlan] = {}
        first = self.step(0)  # validates geometry and configuration now
        self.kfi: int = first.kfi

    def step(self, step: int) -> StepPlan:
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"lvsa: step must be an int >= 0, got {step!r}")
        kfi = self._plans[0].kfi if self._plans else 0
        offset = step % kfi if (kfi > 0 and self.config.rotate) else 0
        plan = self._plans.get(offset)
        if plan is None:
            g = self.geometry
            core = _native.make_plan(g.frames, g.tokens_per_frame, g.encoder_len, g.encoder_side,
                                     step=offset, **self.config.core_kwargs())
            plan = self._plans[offset] = StepPlan(g, self.config, core)
        return plan

    def __repr__(self) -> str:
        return f"Planner({self.geometry}, {self.config}, kfi={self.kfi})"


def model_presets() -> list[dict]:
    """The built-in model presets: VAE/patch factors, reference frames, encoder layout, heads."""
    return _native.model_presets()


def preset(name: str) -> dict:
    for p in model_presets():
        if p["name"] == name:
            return p
    names = ", ".join(p["name"] for p in model_presets())
    raise ValueError(f"lvsa: unknown model preset {name!r}; known presets: {names}")


def describe(plan: StepPlan, step: int, heads: int, head_dim: int, as_json: bool) -> str:
    """The same rendering as ``lvsa-plan`` (JSON or summary + mask) for a plan at ``step``."""
    g = plan.geometry
    core = _native.make_plan(g.frames, g.tokens_per_frame, g.encoder_len, g.encoder_side,
                             step=step, **plan.config.core_kwargs())
    return core.to_json(heads, head_dim) if as_json else core.to_text(heads, head_dim)


__all__ = ["Geometry", "PatternConfig", "Planner", "StepPlan", "model_presets", "preset", "describe"]
