"""The ``lvsa`` command: ``lvsa plan`` (the C++ ``lvsa-plan``), ``lvsa bench``, ``lvsa generate`` and ``lvsa eval``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

USAGE = """usage: lvsa <command> [args]

commands:
  plan     print the attention pattern of a model preset or latent geometry (lvsa plan --help)
  bench    time dense vs LVSA attention at a model's geometry (lvsa bench --help), or one
           whole transformer with --dit (lvsa bench --dit --help)
  generate make a video with a local diffusers model, LVSA and RIFLEx (lvsa generate --help)
  eval     score videos offline: loop and freeze, coherence, quality, against a dense run (lvsa eval --help)
"""


def plan_binary() -> Path:
    """The ``lvsa-plan`` executable shipped inside the package."""
    return Path(__file__).resolve().parent / "bin" / "lvsa-plan"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "plan":
        binary = plan_binary()
        if not binary.exists():
            print(f"lvsa: {binary} is missing; reinstall the package (pip install .)", file=sys.stderr)
            return 2
        sys.stdout.flush()
        os.execv(binary, [str(binary), *rest])
    if command == "bench":
        if "--dit" in rest:
            from .bench.dit import main as dit_main

            return dit_main([arg for arg in rest if arg != "--dit"])
        from .bench import main as bench_main

        return bench_main(rest)
    if command == "generate":
        from .generate import main as generate_main

        return generate_main(rest)
    if command == "eval":
        from .eval import main as eval_main

        return eval_main(rest)
    print(f"lvsa: unknown command {command!r}\n\n{USAGE}", file=sys.stderr, end="")
    return 2


if __name__ == "__main__":
    sys.exit(main())
