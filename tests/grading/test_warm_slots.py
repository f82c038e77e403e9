"""Warm grading slots (:mod:`autograder.grading.sandbox.warm`): one submission never sees the one before.

Each test runs tiny notebooks one after the other through
:func:`~autograder.grading.execution.execute`, in the same worker and so the same warm slot, the
first planting what it can (module state, files, a process that outlives its kernel, System V
shared memory, an attack on the warm interpreter), the next looking for it.
"""

from __future__ import annotations

import json
import textwrap

import nbformat
import pytest

from autograder.grading import execution as grading_execution
from autograder.grading.protocol.calls import ZYGOTE_MODULE
from autograder.grading.sandbox import SandboxSettings, warm

from . import test_sandbox
from .test_sandbox import _needs

sandbox_kind = test_sandbox.sandbox_kind  # the fixture: bubblewrap's sandbox and the grader's own

pytestmark = pytest.mark.grading

ZYGOTE = ZYGOTE_MODULE


def _notebook(*sources: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent(source)) for source in sources]
    return nb


def _run(tmp_path, name: str, *sources: str, settings: SandboxSettings | None = None):
    """Execute the cells; the execution and the last JSON line the notebook printed (or None)."""
    execution = grading_execution.execute(_notebook(*sources), 0, settings or SandboxSettings(), {},
                                tmp_path / name)
    printed = [o.get("text", "") for c in execution.notebook.cells for o in c.outputs
               if o.get("output_type") == "stream"]
    lines = "".join(printed).strip().splitlines()
    return execution, (json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None)


FIND_ZYGOTE = f"""
import os, sys
WARM = 'torch' in sys.modules  # preloaded by the warm interpreter, before any cell imported it
def zygotes():
    found = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        if int(pid) == os.getpid():  # a forked kernel has its warm interpreter's command line
            continue
        try:
            words = open(f'/proc/{{pid}}/cmdline', 'rb').read().split(b'\\0')
            if b'{ZYGOTE}' in words and not words[0].endswith(b'bwrap'):
                found.append(int(pid))
        except OSError:
            pass
    return found
"""


def test_a_submission_leaves_nothing_for_the_next(sandbox_kind, tmp_path):
    plant = """
        import ctypes, os, subprocess, sys, numpy, torch
        torch.dlnn_planted = numpy.dlnn_planted = 1
        for path in ('/scratch/planted', '/tmp/planted', '/dev/shm/planted'):
            open(path, 'w').write('left for the next student')
        subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)  # dlnn-sleeper'],
                         start_new_session=True)
        libc = ctypes.CDLL(None)
        print(libc.shmget(0x5EED, 4096, 0o1666), flush=True)  # IPC_CREAT | 0666
        """
    first, _ = _run(tmp_path, "first", FIND_ZYGOTE, plant,
                    "import json; print(json.dumps({'warm': WARM}))")
    assert not first.problems, first.problems
    look = """
        import json, os, subprocess, numpy, torch
        print(json.dumps({
            'modules': [m for m in (torch, numpy) if hasattr(m, 'dlnn_planted')] != [],
            'files': [p for p in ('/scratch/planted', '/tmp/planted', '/dev/shm/planted')
                      if os.path.exists(p)],
            'sleepers': [line for line in subprocess.run(['ps', '-eo', 'args'], text=True,
                         capture_output=True).stdout.splitlines() if 'dlnn-sleeper' in line],
            'shm': open('/proc/sysvipc/shm').read().splitlines()[1:],
            'warm': WARM,
        }))
        """
    second, seen = _run(tmp_path, "second", FIND_ZYGOTE, look)
    assert not second.problems, second.problems
    assert seen["warm"], "the kernel was not forked from a warm interpreter"
    planted = "".join(o.get("text", "") for o in first.notebook.cells[1].outputs)
    assert int(planted.split()[-1]) >= 0, planted  # the segment was made
    assert seen == {"modules": False, "files": [], "sleepers": [], "shm": [],
                    "warm": True}


def test_the_warm_interpreter_cannot_be_read(tmp_path):
    _needs("bwrap")
    attack = """
        import json, os
        tried = {}
        target = zygotes()[0]
        for what in ('mem', 'environ', 'fd', 'maps'):
            try:
                path = f'/proc/{target}/{what}'
                os.listdir(path) if what == 'fd' else open(path, 'rb').read(16)
                tried[what] = 'read'
            except OSError as exc:
                tried[what] = type(exc).__name__
        print(json.dumps(tried))
        """
    first, tried = _run(tmp_path, "first", FIND_ZYGOTE, attack)
    assert tried is not None, first.notebook.cells
    assert set(tried) == {"mem", "environ", "fd", "maps"} and "read" not in tried.values(), tried


def test_a_notebook_that_kills_its_warm_interpreter_is_graded_in_a_fresh_kernel(sandbox_kind,
                                                                                tmp_path):
    """Killing the warm interpreter (the kernel's parent, of the same user) would end the slot and,
    under bubblewrap, the kernel with it: the notebook is run again from the start in a fresh kernel,
    whose parent it cannot reach, and so gets the grade it got before warm slots; the next
    submission gets a new warm slot."""
    kill = """
        import os, signal
        for target in (os.getppid(), *zygotes()):
            try:
                os.kill(target, signal.SIGKILL)
            except OSError:
                pass
        """
    later = "import json; print(json.dumps({'warm': WARM, 'after': 'ran'}))"
    first, seen = _run(tmp_path, "first", FIND_ZYGOTE, kill, later)
    assert not first.problems, first.problems
    assert seen == {"warm": False, "after": "ran"}, first.notebook.cells  # the fresh kernel's run
    second, seen = _run(tmp_path, "second", FIND_ZYGOTE,
                        "import json, torch; print(json.dumps({'warm': WARM, "
                        "'sum': float(torch.ones(3).sum())}))")
    assert not second.problems, second.problems
    assert seen == {"warm": True, "sum": 3.0}


def test_a_forked_kernel_is_in_the_jobs_memory_group(tmp_path):
    _needs("memory")
    settings = SandboxSettings(memory_bytes=2**30)
    hog = """
        import subprocess, sys
        code = 'b = bytearray(450 * 2**20); import time; time.sleep(5)'
        children = [subprocess.Popen([sys.executable, '-c', code]) for _ in range(3)]
        print([c.wait() for c in children])
        """
    execution, _ = _run(tmp_path, "hog", hog, settings=settings)
    assert any("needed more than 1.0 GiB" in p for p in execution.problems), execution.problems
    quiet, _ = _run(tmp_path, "after", "import torch\nprint(torch.zeros(2).sum())",
                    settings=settings)
    assert not quiet.problems, quiet.problems  # the next job has a group of its own


def test_peak_memory_of_a_slot_is_measured(tmp_path):
    _needs("memory")
    execution, _ = _run(tmp_path, "peak", "import torch, numpy\nx = torch.zeros(2**24)\nprint(1)")
    assert execution.memory_peak is not None
    assert 64 * 2**20 < execution.memory_peak < 1.5 * 2**30, execution.memory_peak


def test_a_cold_kernel_is_still_available(tmp_path):
    execution, seen = _run(tmp_path, "cold", FIND_ZYGOTE,
                           "import json; print(json.dumps({'warm': WARM}))",
                           settings=SandboxSettings(warm=False))
    assert not execution.problems, execution.problems
    assert seen == {"warm": False}


def teardown_module() -> None:
    warm.close_all()
