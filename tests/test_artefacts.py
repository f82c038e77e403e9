"""The background builds of the test session cannot be reached by what a test patches."""

from __future__ import annotations

import json
import os
from functools import partial
from pathlib import Path

import pytest

from . import tools
from .artefact_probes import counted, failing, waiting_for
from .artefacts import TIMES_VARIABLE, Artefacts


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


def test_two_test_processes_build_each_shared_artefact_once(tmp_path, monkeypatch):
    """Two registries on one shared folder (as pytest-xdist's two workers): each artefact is
    built by one of them, both get its value, and a build's error reaches both; each build
    writes its times once."""
    shared, marks = tmp_path / "shared", tmp_path / "marks"
    monkeypatch.setenv(TIMES_VARIABLE, str(tmp_path / "times.jsonl"))
    shared.mkdir()
    marks.mkdir()
    workers = [Artefacts(workers=1, shared=shared), Artefacts(workers=1, shared=shared)]
    names = [f"a{i}" for i in range(4)]
    try:
        for artefacts in workers:
            for name in names:
                artefacts.register(name, partial(counted, str(marks), name), {"probe"})
            artefacts.register("broken", failing, {"probe"})
        for artefacts in workers:
            artefacts.prefetch([({"probe"}, None)])
        for artefacts in workers:
            assert [artefacts.get(name) for name in names] == [f"{n} built" for n in names]
            with pytest.raises(Exception, match="the build broke here"):
                artefacts.get("broken")
        built = sorted(p.name.split("-")[0] for p in marks.iterdir())
        assert built == names, "every artefact is built exactly once"
        times = [json.loads(line) for line in (tmp_path / "times.jsonl").read_text().splitlines()]
        assert sorted(t["artefact"] for t in times) == sorted([*names, "broken"])
        assert all(t["wall_s"] >= 0 and t["cpu_s"] >= 0 for t in times)
    finally:
        for artefacts in workers:
            artefacts.close()
    assert shared.is_dir(), "the shared folder is its creator's to remove"


def test_an_artefact_a_test_waits_for_is_not_left_behind_a_long_build(tmp_path):
    artefacts = Artefacts(workers=1)
    release = tmp_path / "release"
    artefacts.register("long", partial(waiting_for, str(release)), {"probe"}, priority=0)
    artefacts.register("short", partial(counted, str(tmp_path), "short"), {"probe"}, priority=1)
    try:
        artefacts.prefetch([({"probe"}, None)])
        assert artefacts.get("short") == "short built"  # while the long build still runs
        release.touch()
        assert artefacts.get("long") == "long"
    finally:
        release.touch()
        artefacts.close()
