"""CogVideoX 1.0 (5B) text-to-video: 193 frames (4x the 49 it was trained on) at 480x720 with LVSA
and RIFLEx — `lvsa generate` with these settings filled in.

    python examples/cogvideox_generate.py --model ./CogVideoX-5b --prompt "..."

Any `lvsa generate` option can be added; a later option overrides the one set here.
"""

import sys

from lvsa.generate import main

SETTINGS = ["--num-frames", "193", "--height", "480", "--width", "720", "--fps", "8", "--guidance", "6",
            "--lvsa", "--riflex", "--vae-tiling"]

if __name__ == "__main__":
    sys.exit(main(SETTINGS + sys.argv[1:]))
