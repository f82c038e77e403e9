"""The session's expensive artefacts, built once each in the background (not a test module).

Executing notebooks dominates the test run.  As soon as pytest knows which tests will run, every
artefact that one of them needs is queued here and built by two background threads (the longest
first), while the quick tests run in the main thread; a fixture then only waits for its artefact.
This keeps both cores busy for the whole run instead of building each artefact when its first test
happens to start.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Artefact:
    """How to build one artefact, and which fixtures need it."""

    name: str
    build: Callable[[], Any]
    fixtures: frozenset[str]
    priority: int = 100
    """Lower starts first: the longest builds go first so that nothing long is left for the end."""
    tutorial: str | None = None
    """The one tutorial it belongs to (a test of another tutorial does not need it), or None."""

    def needed_by(self, fixtures: set[str], tutorial: str | None) -> bool:
        """Whether a test using ``fixtures``, about ``tutorial`` (None: any or all), needs it."""
        return bool(self.fixtures & fixtures) and (
            self.tutorial is None or tutorial is None or self.tutorial == tutorial
        )


@dataclass
class Artefacts:
    """A registry of artefacts and the pool that builds them, once each."""

    workers: int = 2
    registry: dict[str, Artefact] = field(default_factory=dict)
    _jobs: dict[str, Future] = field(default_factory=dict)
    _pool: ThreadPoolExecutor | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _folders: list[Path] = field(default_factory=list)

    def register(self, name: str, build: Callable[[], Any], fixtures, priority: int = 100,
                 tutorial: str | None = None) -> None:
        self.registry[name] = Artefact(name, build, frozenset(fixtures), priority, tutorial)

    def submit(self, name: str) -> Future:
        """Queue the artefact ``name`` (once); return its future."""
        with self._lock:
            if name not in self._jobs:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="artefact")
                self._jobs[name] = self._pool.submit(self.registry[name].build)
            return self._jobs[name]

    def get(self, name: str) -> Any:
        """The artefact ``name``, built now if it was not queued yet (re-raises its build error)."""
        return self.submit(name).result()

    def prefetch(self, tests: list[tuple[set[str], str | None]]) -> list[str]:
        """Queue, by priority, every artefact that one of ``tests`` needs (each given by its
        fixtures and its tutorial, see :meth:`Artefact.needed_by`); return their names."""
        wanted = sorted(
            (a for a in self.registry.values()
             if any(a.needed_by(fixtures, tutorial) for fixtures, tutorial in tests)),
            key=lambda a: a.priority,
        )
        for artefact in wanted:
            self.submit(artefact.name)
        return [a.name for a in wanted]

    def folder(self, prefix: str) -> Path:
        """A new temporary folder, removed by :meth:`close`."""
        path = Path(tempfile.mkdtemp(prefix=f"dlnn-{prefix}-"))
        self._folders.append(path)
        return path

    def close(self) -> None:
        """Stop queued builds, wait for running ones, remove the temporary folders."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        for path in self._folders:
            shutil.rmtree(path, ignore_errors=True)


ARTEFACTS = Artefacts()
