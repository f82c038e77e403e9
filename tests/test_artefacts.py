"""The background builds of the test session cannot be reached by what a test patches."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from . import tools
from .artefacts import Artefacts


def _seen() -> dict:
    """What a build process sees: an environment variable, a module attribute, its folder."""
    return {"variable": os.environ.get("DLNN_ARTEFACT_PROBE"), "root": str(tools.ROOT),
            "pid": os.getpid()}


def _combined(first: dict, second: dict) -> list:
    return [first["variable"], second["variable"]]


@pytest.mark.slow  # a fresh interpreter or kernel: seconds
def test_builds_run_apart_from_what_tests_patch(monkeypatch):
    artefacts = Artefacts()
    artefacts.register("seen", _seen, {"probe"})
    artefacts.register("both", _combined, {"probe"}, needs=("seen", "seen"))
    monkeypatch.setenv("DLNN_ARTEFACT_PROBE", "at collection")
    try:
        assert artefacts.prefetch([({"probe"}, None)]) == ["seen", "both"]
        # A test patches the environment and a module while the builds may still be running.
        monkeypatch.setenv("DLNN_ARTEFACT_PROBE", "patched by a test")
        monkeypatch.setattr(tools, "ROOT", Path("/nowhere"))
        seen = artefacts.get("seen")
        assert seen["variable"] == "at collection"
        assert seen["root"] != "/nowhere"
        assert seen["pid"] != os.getpid()
        assert artefacts.get("both") == ["at collection", "at collection"]
        folder = artefacts.folder("probe")
        assert folder.parent == artefacts.root() and folder.is_dir()
    finally:
        artefacts.close()
    assert not artefacts.root().exists()
