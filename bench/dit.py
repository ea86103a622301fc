"""The DiT-level benchmark, as a script: the same as ``lvsa bench --dit`` (see lvsa/bench/dit.py).

    python3 bench/dit.py --model wan2.1-1.3b --frames 81 161 --methods dense-cudnn flex lvsa-cuda
"""

import sys

from lvsa.bench.dit import main

if __name__ == "__main__":
    sys.exit(main())
