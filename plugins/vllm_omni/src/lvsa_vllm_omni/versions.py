"""The vLLM-Omni and vLLM releases this plugin was written and tested against.

The plugin reads vLLM-Omni internals that change between releases (the attention layer's
metadata, the models' token layouts, the pipelines' loops), so any other release is refused at
load instead of attending with a layout the plugin may misread.
"""

from __future__ import annotations

from importlib import metadata

SUPPORTED = {"vllm-omni": ("0.30.0",), "vllm": ("0.30.0",)}


def check(installed: dict[str, str] | None = None) -> None:
    """Raise ``RuntimeError`` naming the supported versions unless every package in
    :data:`SUPPORTED` is installed at one of them (``installed``: name -> version, for tests)."""
    for package, versions in SUPPORTED.items():
        if installed is not None:
            found = installed.get(package)
        else:
            try:
                found = metadata.version(package)
            except metadata.PackageNotFoundError:
                found = None
        if found not in versions:
            wanted = " or ".join(versions)
            have = "is not installed" if found is None else f"is {found}"
            raise RuntimeError(f"lvsa-vllm-omni supports {package} {wanted}; the installed {package} {have}. "
                               f"Install {package}=={versions[-1]} or remove lvsa-vllm-omni.")
