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

When the tests run in several processes (pytest-xdist's workers, see ``tests/conftest.py``), every
worker queues the same artefacts, but each is built once for the whole session: the workers share
one folder (:attr:`Artefacts.shared`), a build starts only in the worker that *claims* it there
first (an exclusively created claim file), and the value it builds is written next to the claim,
where the other workers read it when they need it.  A worker whose claim loses goes on to the next
artefact in its queue, so the builds spread over the workers' build processes.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import resource
import shutil
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT_VARIABLE = "DLNN_TEST_ARTEFACTS"
"""The session's artefact folder, handed to the build processes (see :meth:`Artefacts.folder`)."""

SHARED_VARIABLE = "DLNN_TEST_SHARED_ARTEFACTS"
"""The folder the test processes of one session share their artefacts in (set by the process that
starts pytest-xdist's workers, see ``tests/conftest.py``)."""

TIMES_VARIABLE = "DLNN_TEST_ARTEFACT_TIMES"
"""A file each build appends its name, wall and CPU seconds to (a JSON line), when set: where a
test run's time goes (``DLNN_TEST_ARTEFACT_TIMES=times.jsonl python -m pytest``)."""

WAIT_POLL = 0.1
"""Seconds between two looks for an artefact that another test process is building."""


class _Elsewhere:
    """What a build job returns when another test process claimed the artefact first."""


ELSEWHERE = _Elsewhere()


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


def _cpu_seconds() -> float:
    """CPU seconds of this process and of its children that have ended (kernels, nbgrader)."""
    usages = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(usage.ru_utime + usage.ru_stime for usage in usages)


def _build_in_worker(environment: dict[str, str], name: str, build: Callable[..., Any],
                     *values: Any) -> Any:
    """Run ``build`` in a build process, in the environment of the collection time; with
    :data:`TIMES_VARIABLE` set, append its wall and CPU seconds to that file (a JSON line)."""
    os.environ.clear()
    os.environ.update(environment)
    start, cpu = time.time(), _cpu_seconds()
    try:
        return build(*values)
    finally:
        if os.environ.get(TIMES_VARIABLE):
            line = {"artefact": name, "pid": os.getpid(), "start": round(start, 2),
                    "wall_s": round(time.time() - start, 2),
                    "cpu_s": round(_cpu_seconds() - cpu, 2)}
            with open(os.environ[TIMES_VARIABLE], "a") as times:
                times.write(json.dumps(line) + "\n")


@dataclass
class Artefacts:
    """A registry of artefacts and the pools that build them, once each."""

    workers: int = 2
    registry: dict[str, Artefact] = field(default_factory=dict)
    _jobs: dict[str, Future] = field(default_factory=dict)
    _threads: ThreadPoolExecutor | None = None
    _urgent: ThreadPoolExecutor | None = None
    _processes: ProcessPoolExecutor | None = None
    _environment: dict[str, str] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _root: Path | None = None
    shared: Path | None = None
    """The folder shared with the session's other test processes (None: this process alone)."""
    _fetched: dict[str, Any] = field(default_factory=dict)

    def register(self, name: str, build: Callable[..., Any], fixtures, priority: int = 100,
                 tutorial: str | None = None, needs: tuple[str, ...] = (),
                 after: tuple[str, ...] = ()) -> None:
        self.registry[name] = Artefact(name, build, frozenset(fixtures), priority, tutorial,
                                       tuple(needs), tuple(after))

    def _start(self) -> None:
        """The pools, and the environment snapshot the builds run in (called under the lock)."""
        if self._threads is None:
            self._environment = dict(os.environ, **{ROOT_VARIABLE: str(self.root())})
            self._processes = ProcessPoolExecutor(  # one more for a build a test waits for
                self.workers + 1, mp_context=multiprocessing.get_context("spawn"),
            )
            self._threads = ThreadPoolExecutor(self.workers, thread_name_prefix="artefact")
            self._urgent = ThreadPoolExecutor(2, thread_name_prefix="artefact-now")

    def _run(self, artefact: Artefact) -> Any:
        """One build (in a thread that waits for the build process); :data:`ELSEWHERE` when
        another test process claimed it first."""
        if self.shared is not None and not self._claim(artefact.name):
            return ELSEWHERE
        try:
            for name in artefact.after:
                self.get(name)
            values = [self.get(name) for name in artefact.needs]
            value = self._processes.submit(
                _build_in_worker, self._environment, artefact.name, artefact.build, *values,
            ).result()
        except BaseException:
            if self.shared is not None:
                self._publish(artefact.name, "error", traceback.format_exc())
            raise
        if self.shared is not None:
            self._publish(artefact.name, "value", value)
        return value

    def _path(self, name: str, kind: str) -> Path:
        return self.shared / f"{name.replace(':', '-')}.{kind}"

    def _claim(self, name: str) -> bool:
        """Whether this process is the first to claim ``name`` in the shared folder."""
        try:
            descriptor = os.open(self._path(name, "claim"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return False
        os.write(descriptor, str(os.getpid()).encode())
        os.close(descriptor)
        return True

    def _publish(self, name: str, kind: str, value: Any) -> None:
        """Write what the build of ``name`` gave (its value, or its error's traceback)."""
        partial_path = self._path(name, f"{kind}.partial")
        partial_path.write_bytes(pickle.dumps((kind, value)))
        os.replace(partial_path, self._path(name, "result"))

    def _fetch(self, name: str) -> Any:
        """The value of ``name`` built by another test process (waits for it)."""
        if name not in self._fetched:
            result, claim = self._path(name, "result"), self._path(name, "claim")
            while not result.exists():
                owner = int(claim.read_text() or 0) if claim.exists() else 0
                if owner and not _alive(owner):
                    raise RuntimeError(f"the test process {owner} that was building the artefact "
                                       f"{name!r} is gone before it finished")
                time.sleep(WAIT_POLL)
            kind, value = pickle.loads(result.read_bytes())
            if kind == "error":
                raise RuntimeError(f"the artefact {name!r} failed to build in another test "
                                   f"process:\n{value}")
            self._fetched[name] = value
        return self._fetched[name]

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
        """The artefact ``name`` (re-raises its build error).

        An artefact that was not queued yet, or is still queued behind other builds, is built now,
        in a build process of its own (the caller would only wait: its core is free); one that
        another test process builds is read from the shared folder when it is there.
        """
        self.submit(name)
        with self._lock:
            future = self._jobs[name]
            if future.cancel():  # still queued behind other builds: start it now
                future = self._jobs[name] = self._urgent.submit(self._run, self.registry[name])
        value = future.result()
        return self._fetch(name) if value is ELSEWHERE else value

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
            self._root = (Path(inherited) if inherited else self.shared if self.shared is not None
                          else Path(tempfile.mkdtemp(prefix="dlnn-test-artefacts-")))
        return self._root

    def folder(self, prefix: str) -> Path:
        """A new folder in the session's artefact folder, removed by :meth:`close`."""
        return Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=self.root()))

    def close(self) -> None:
        """Stop queued builds, wait for running ones, remove the session's folder."""
        for threads in (self._threads, self._urgent):
            if threads is not None:
                threads.shutdown(wait=True, cancel_futures=True)
        if self._processes is not None:
            self._processes.shutdown(wait=True, cancel_futures=True)
        if self._root is not None and ROOT_VARIABLE not in os.environ and self.shared is None:
            shutil.rmtree(self._root, ignore_errors=True)  # a shared folder: its creator removes it


def _alive(pid: int) -> bool:
    """Whether the process ``pid`` exists (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


ARTEFACTS = Artefacts()
