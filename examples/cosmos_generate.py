"""Cosmos 2.5 (Predict) text-to-world: 369 frames (4x the 93 it was trained on) at 704x1280 with
LVSA and RIFLEx — `lvsa generate` with these settings filled in. The pipeline requires NVIDIA's
`cosmos_guardrail` package (pip install cosmos_guardrail), whose safety models it loads.

    python examples/cosmos_generate.py --model ./Cosmos-Predict2.5-2B-Diffusers --prompt "..."

Any `lvsa generate` option can be added; a later option overrides the one set here.
"""

import sys

from lvsa.generate import main

SETTINGS = ["--num-frames", "369", "--height", "704", "--width", "1280", "--fps", "16", "--lvsa", "--riflex",
            "--vae-tiling"]

if __name__ == "__main__":
    sys.exit(main(SETTINGS + sys.argv[1:]))
