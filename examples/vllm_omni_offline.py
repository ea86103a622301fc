"""Generate a long video offline through vLLM-Omni with LVSA: Wan 2.1/2.2 or HunyuanVideo 1.5.

    pip install ./plugins/vllm_omni        # next to vllm-omni 0.30.0 (and lvsa)
    python examples/vllm_omni_offline.py --model Wan-AI/Wan2.2-T2V-A14B-Diffusers --frames 161
    python examples/vllm_omni_offline.py --model hunyuanvideo-community/HunyuanVideo-1.5-Diffusers-480p_t2v \\
        --frames 193 --ulysses 2

LVSA's knobs are the LVSA_* variables lvsa.enable reads (docs/tuning.md); the engagement line
(one per geometry: frames, pattern, density, backend) is logged by every worker.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

# The one variable: every attention layer is built with LVSA; only video self-attention runs sparse.
os.environ.setdefault("DIFFUSION_ATTENTION_BACKEND", "LVSA")

from lvsa.generate.video import to_uint8, write_mp4  # noqa: E402
from vllm_omni import Omni  # noqa: E402
from vllm_omni.inputs.data import OmniDiffusionSamplingParams  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a Diffusers-format checkpoint (Hub id or folder)")
    parser.add_argument("--prompt", default="A slow aerial shot over a coastline at sunset, waves rolling in")
    parser.add_argument("--frames", type=int, default=161)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=832)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fps", type=float, default=16.0)
    parser.add_argument("--ulysses", type=int, default=1, help="vLLM-Omni's Ulysses degree (GPUs per request)")
    parser.add_argument("--out", type=Path, default=Path("lvsa_vllm_omni.mp4"))
    args = parser.parse_args()

    omni = Omni(model=args.model, ulysses_degree=args.ulysses)
    try:
        [output] = omni.generate({"prompt": args.prompt}, OmniDiffusionSamplingParams(
            num_frames=args.frames, height=args.height, width=args.width, num_inference_steps=args.steps,
            seed=args.seed))
    finally:
        omni.close()
    frames = output.images[0] if len(output.images) == 1 else output.images
    write_mp4(to_uint8(frames), args.out, args.fps)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
