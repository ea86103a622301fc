"""Fixtures of the plugin's tests: vLLM-Omni's CPU set-up (omni_cpu.py) once per session, and
LVSA knobs that make the tiny test videos sparse."""

from __future__ import annotations

import os

import pytest

from omni_cpu import init_vllm, load_plugins


@pytest.fixture(scope="session")
def vllm_config():
    config = init_vllm()
    load_plugins()
    return config


@pytest.fixture
def sparse_knobs(monkeypatch):
    """A pattern that is sparse at every rotation offset for the tiny test lengths (5-8 frames)."""
    for name in list(os.environ):
        if name.startswith("LVSA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("LVSA_REFERENCE", "2")
    monkeypatch.setenv("LVSA_WINDOW", "0")
    monkeypatch.setenv("LVSA_KEYFRAME_INTERVAL", "3")
    monkeypatch.setenv("LVSA_BACKEND", "torch")
    monkeypatch.setenv("LVSA_STRICT", "1")
