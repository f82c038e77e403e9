"""The session's expensive artefacts, built once each in the background (not a test module).

Executing notebooks dominates the test run.  As soon as pytest knows which tests will run, every
artefact that one of them needs is queued here and built in two background worker *processes*
(the longest first), while the quick tests run in the main process; a fixture then only waits for
its artefact.  This keeps both cores busy for the whole run instead of building each artefact when
its first test happens to start.

The builds run in processes of their own, started from a snapshot of the environment taken when the
tests were collected, so that nothing a test does in the main process (``monkeypatch`` of a module
attribute or of an environment variable) can reach a build that is running at the same time.  A
builder is therefore a module-level function (or a ``functools.partial`` of one) whose arguments
are the values of the artefacts it ``needs`` and whose result can be pickled.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT_VARIABLE = "DLNN_TEST_ARTEFACTS"
"""The session's artefact folder, handed to the build processes (see :meth:`Artefacts.folder`)."""


@dataclass
class Artefact:
    """How to build one artefact, and which fixtures need it."""

    name: str
    build: Callable[..., Any]
    fixtures: frozenset[str]
    priority: int = 100
    """Lower starts first: the longest builds go first so that nothing long is left for the end."""
    tutorial: str | None = None
    """The one tutorial it belongs to (a test of another tutorial does not need it), or None."""
    needs: tuple[str, ...] = ()
    """Artefacts whose values are passed to ``build``, in this order."""
    after: tuple[str, ...] = ()
    """Artefacts that must be built first (their values are not passed)."""

    def needed_by(self, fixtures: set[str], tutorial: str | None) -> bool:
        """Whether a test using ``fixtures``, about ``tutorial`` (None: any or all), needs it."""
        return bool(self.fixtures & fixtures) and (
            self.tutorial is None or tutorial is None or self.tutorial == tutorial
        )


def _build_in_worker(environment: dict[str, str], build: Callable[..., Any], *values: Any) -> Any:
    """Run ``build`` in a build process, in the environment of the collection time."""
    os.environ.clear()
    os.environ.update(environment)
    return build(*values)


@dataclass
class Artefacts:
    """A registry of artefacts and the pools that build them, once each."""

    workers: int = 2
    registry: dict[str, Artefact] = field(default_factory=dict)
    _jobs: dict[str, Future] = field(default_factory=dict)
    _threads: ThreadPoolExecutor | None = None
    _processes: ProcessPoolExecutor | None = None
    _environment: dict[str, str] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _root: Path | None = None

    def register(self, name: str, build: Callable[..., Any], fixtures, priority: int = 100,
                 tutorial: str | None = None, needs: tuple[str, ...] = (),
                 after: tuple[str, ...] = ()) -> None:
        self.registry[name] = Artefact(name, build, frozenset(fixtures), priority, tutorial,
                                       tuple(needs), tuple(after))

    def _start(self) -> None:
        """The pools, and the environment snapshot the builds run in (called under the lock)."""
        if self._threads is None:
            self._environment = dict(os.environ, **{ROOT_VARIABLE: str(self.root())})
            self._processes = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"),
            )
            self._threads = ThreadPoolExecutor(self.workers, thread_name_prefix="artefact")

    def _run(self, artefact: Artefact) -> Any:
        """One build (in a thread that waits for the build process)."""
        for name in artefact.after:
            self.get(name)
        values = [self.get(name) for name in artefact.needs]
        return self._processes.submit(
            _build_in_worker, self._environment, artefact.build, *values,
        ).result()

    def submit(self, name: str) -> Future:
        """Queue the artefact ``name`` (once), after what it needs; return its future."""
        artefact = self.registry[name]
        for before in (*artefact.after, *artefact.needs):
            self.submit(before)
        with self._lock:
            if name not in self._jobs:
                self._start()
                self._jobs[name] = self._threads.submit(self._run, artefact)
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

    def root(self) -> Path:
        """The session's artefact folder (in a build process: the one its session made)."""
        if self._root is None:
            inherited = os.environ.get(ROOT_VARIABLE)
            self._root = (Path(inherited) if inherited
                          else Path(tempfile.mkdtemp(prefix="dlnn-test-artefacts-")))
        return self._root

    def folder(self, prefix: str) -> Path:
        """A new folder in the session's artefact folder, removed by :meth:`close`."""
        return Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=self.root()))

    def close(self) -> None:
        """Stop queued builds, wait for running ones, remove the session's folder."""
        if self._threads is not None:
            self._threads.shutdown(wait=True, cancel_futures=True)
        if self._processes is not None:
            self._processes.shutdown(wait=True, cancel_futures=True)
        if self._root is not None and ROOT_VARIABLE not in os.environ:
            shutil.rmtree(self._root, ignore_errors=True)


ARTEFACTS = Artefacts()
