"""Wan 2.1 / 2.2 text-to-video: 321 frames (4x the 81 Wan was trained on) at 480x832 with LVSA
and RIFLEx — `lvsa generate` with these settings filled in.

    python examples/wan_generate.py --model ./Wan2.1-T2V-1.3B-Diffusers --prompt "a red fox runs through snow"

Any `lvsa generate` option can be added; a later option overrides the one set here.
"""

import sys

from lvsa.generate import main

SETTINGS = ["--num-frames", "321", "--height", "480", "--width", "832", "--fps", "16", "--lvsa", "--riflex"]

if __name__ == "__main__":
    sys.exit(main(SETTINGS + sys.argv[1:]))
