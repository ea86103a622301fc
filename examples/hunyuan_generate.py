"""HunyuanVideo 1.5 text-to-video: 481 frames (about 4x the 121 it was trained on) at 480x848 with
LVSA and RIFLEx — `lvsa generate` with these settings filled in.

    python examples/hunyuan_generate.py --model ./HunyuanVideo-1.5-Diffusers-480p_t2v --prompt "..."

Any `lvsa generate` option can be added; a later option overrides the one set here.
"""

import sys

from lvsa.generate import main

SETTINGS = ["--num-frames", "481", "--height", "480", "--width", "848", "--fps", "24", "--lvsa", "--riflex",
            "--vae-tiling"]

if __name__ == "__main__":
    sys.exit(main(SETTINGS + sys.argv[1:]))
