"""What every benchmark records about the machine, and where its JSON goes:
``bench/results/<name>_<card>_<date>.json`` (card and date inside too)."""

from __future__ import annotations

import datetime as _dt
import json
import platform
import subprocess
from pathlib import Path

import torch


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def card_info(device: torch.device | None = None) -> dict:
    """The card (or CPU), its driver and the software versions, for the result file."""
    device = device or torch.device("cuda")
    versions = dict(torch=torch.__version__, python=platform.python_version())
    if device.type != "cuda":
        return dict(card=cpu_name(), threads=torch.get_num_threads(), **versions)
    p = torch.cuda.get_device_properties(device)
    try:
        driver = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=20).stdout.strip().splitlines()[0]
    except Exception:  # noqa: BLE001 - informational only
        driver = "unknown"
    return dict(card=p.name, sm_count=p.multi_processor_count, memory_gb=round(p.total_memory / 2**30, 1),
                driver=driver, cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(), **versions)


def write(out_dir, name: str, info: dict, payload: dict) -> Path:
    """Write ``payload`` with the date and ``info`` to ``<out_dir>/<name>_<card>_<date>.json``."""
    date = _dt.date.today().isoformat()
    card = info["card"].replace(" ", "_").replace("/", "_")
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    path = Path(out_dir) / f"{name}_{card}_{date}.json"
    path.write_text(json.dumps(dict(date=date, **info, **payload), indent=1))
    return path
