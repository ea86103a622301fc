"""The JSON sidecar written next to every output: the command, every setting as given and as
resolved, the library versions and the hardware, the timings and the LVSA / RIFLEx facts — enough
to compare two runs or repeat one."""

from __future__ import annotations

import json
import platform
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import torch

_PACKAGES = ("lvsa", "torch", "diffusers", "transformers", "av", "numpy")


def versions() -> dict:
    found = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    found["cuda"] = torch.version.cuda
    return found


def hardware(device: torch.device) -> dict:
    info = {"device": str(device), "platform": platform.platform(), "cpu_threads": torch.get_num_threads()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def write(path: Path, *, argv: list, options: dict, resolved: dict, timeline, wall: float, lvsa: dict,
          riflex: dict, outputs: dict, world_size: int) -> None:
    record = {
        "date": datetime.now(timezone.utc).isoformat(),
        "command": ["lvsa", "generate", *argv],
        "python_executable": sys.executable,
        "options": options,
        "resolved": resolved,
        "lvsa": lvsa,
        "riflex": riflex,
        "timings": {"wall_s": wall, "stages_s": timeline.stages, "steps_s": timeline.steps},
        "peak_memory_bytes": timeline.peak_memory,
        "versions": versions(),
        "hardware": {**hardware(timeline.device), "world_size": world_size},
        "outputs": outputs,
    }
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
