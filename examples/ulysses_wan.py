"""Wan 2.1 / 2.2 text-to-video with LVSA on N GPUs (Ulysses context parallelism).

    torchrun --nproc-per-node 4 examples/ulysses_wan.py --model ./Wan2.1-T2V-1.3B-Diffusers \\
        --prompt "a red fox trots through snow" --frames 321 --output fox.mp4

Every process loads the pipeline on its GPU and runs the same call with the same seed;
``lvsa.enable(pipe, parallel="auto")`` splits each transformer's video tokens over the processes
and gathers them back after the last block, so the result equals a 1-GPU run's. Rank 0 alone
prints and writes the output. Without torchrun it runs on one GPU (or the CPU). ``--latents
out.pt`` saves the final latents instead of decoding a video.
"""

import argparse

import diffusers
import torch
from diffusers import WanPipeline

import lvsa
import lvsa.parallel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a local diffusers Wan pipeline folder")
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--frames", type=int, default=321, help="video frames (4k + 1)")
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=832)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="ulysses_wan.mp4")
    parser.add_argument("--latents", help="save the final latents here (torch.save) instead of a video")
    args = parser.parse_args()

    device = lvsa.parallel.init_process_group()
    if not lvsa.parallel.is_leader():
        diffusers.utils.logging.set_verbosity_error()  # diffusers' warnings once, from rank 0
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    pipe = WanPipeline.from_pretrained(args.model, torch_dtype=dtype).to(device)
    pipe.set_progress_bar_config(disable=not lvsa.parallel.is_leader())
    lvsa.enable(pipe, parallel="auto")

    # The same seed on every rank: each starts from the same noise, as the one GPU would.
    generator = torch.Generator(device).manual_seed(args.seed)
    result = pipe(prompt=args.prompt, num_frames=args.frames, height=args.height, width=args.width,
                  num_inference_steps=args.steps, generator=generator,
                  output_type="latent" if args.latents else "np").frames
    if lvsa.parallel.is_leader():
        if args.latents:
            torch.save(result.cpu(), args.latents)
        else:
            from diffusers.utils import export_to_video

            export_to_video(result[0], args.output, fps=16)
        print(f"wrote {args.latents or args.output}")
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
