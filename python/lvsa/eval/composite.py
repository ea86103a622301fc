"""The composite score: a weighted mean of the group scores, the weights renormalised over the
groups that ran (no reference, no model weights: those groups drop out), and a verdict.

A group's score is the mean of its metrics' scores, except the loop group, whose ``loop_quality``
is the geometric mean of its detectors. Loop and freeze weigh most: it is the failure LVSA is
meant to prevent past the training horizon.
"""

from __future__ import annotations

from .measure import group_mean

WEIGHTS = {
    "loop": 0.30,
    "temporal": 0.20,
    "spatial": 0.15,
    "dynamics": 0.10,
    "reference": 0.10,
    "clip_iqa": 0.05,
    "text_alignment": 0.05,
    "subject_consistency": 0.05,
}
GOOD, FAIR = 0.75, 0.5  # composite at or above: "good", "fair"; below FAIR: "poor"
LOOP_FAILS = 0.5  # loop_quality below this makes the verdict "poor" whatever the rest says
ISSUE = 0.5  # any metric scoring below this is named in the verdict


def group_score(name: str, group: dict) -> float | None:
    return group["score"] if name == "loop" else group_mean(group["metrics"])


def combine(groups: dict) -> dict:
    scores = {name: group_score(name, group) for name, group in groups.items()}
    ran = {name: score for name, score in scores.items() if score is not None}
    total = sum(WEIGHTS[name] for name in ran)
    weights = {name: WEIGHTS[name] / total for name in ran}
    composite = sum(weights[name] * score for name, score in ran.items())
    issues = [f"{name} {entry['score']:.2f}" for group in groups.values()
              for name, entry in group["metrics"].items() if entry["score"] is not None and entry["score"] < ISSUE]
    loop = groups["loop"]
    if loop["score"] < LOOP_FAILS:
        what = {"frozen": "frozen",
                "looping": f"loops every {loop['period_frames']} frames"}.get(loop["state"], "loop or freeze signs")
        verdict = f"poor: {what}"
    else:
        verdict = "good" if composite >= GOOD else "fair" if composite >= FAIR else "poor"
    if issues:
        verdict += " (low: " + ", ".join(issues) + ")"
    return {"score": composite, "verdict": verdict, "group_scores": scores, "weights": weights}
