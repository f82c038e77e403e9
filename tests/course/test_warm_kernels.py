"""Kernels forked from a warm interpreter (coursebuild.warm_kernels, coursebuild.zygote): the build's
notebooks run in them exactly as in fresh kernels, each in a process of its own."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import nbformat
import pytest
from nbclient.exceptions import CellTimeoutError

from coursebuild.build import REFERENCE_ENV, execute_notebook, kernel_env
from coursebuild.warm_kernels import WarmKernels, WarmKernelsError

pytestmark = pytest.mark.slow

PROBE = """\
import json, os, sys, time, resource
import numpy as np
import matplotlib.pyplot as plt
import dlnn_helpers
seen_before = hasattr(dlnn_helpers, "_left_by_an_earlier_notebook")
dlnn_helpers._left_by_an_earlier_notebook = True
plt.plot([0, 1], [1, 0])
plt.show()
print(json.dumps({
    "pid": os.getpid(), "cwd": os.getcwd(), "path": sys.path,
    "argv0": os.path.basename(sys.argv[0]), "setting": os.environ.get("DLNN_PROBE_SETTING"),
    "threads": os.environ.get("OMP_NUM_THREADS"), "draw": float(np.random.random()),
    "seen_before": seen_before, "backend": plt.get_backend(),
    "cpu": resource.getrusage(resource.RUSAGE_SELF).ru_utime,
}))
"""


def _probe(folder: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(PROBE)]
    path = folder / "probe.ipynb"
    nbformat.write(nb, path)
    return path


def _facts(nb: nbformat.NotebookNode) -> tuple[dict, list[str]]:
    outputs = nb.cells[0].outputs
    assert [o.output_type for o in outputs] != [] and all(o.output_type != "error" for o in outputs), outputs
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    kinds = [sorted(o.get("data", {})) for o in outputs if o.output_type == "display_data"]
    return json.loads(text.strip().splitlines()[-1]), kinds


@pytest.fixture(scope="module")
def kernels():
    with WarmKernels(kernel_env(REFERENCE_ENV)) as warm:
        yield warm


def test_a_forked_kernel_runs_a_notebook_as_a_fresh_one_does(kernels, tmp_path):
    path = _probe(tmp_path)
    env = {**REFERENCE_ENV, "DLNN_PROBE_SETTING": "first"}
    fresh, fresh_figures = _facts(execute_notebook(path, env=env))
    first, figures = _facts(execute_notebook(path, env=env, kernels=kernels))
    second, _ = _facts(execute_notebook(path, env={**env, "DLNN_PROBE_SETTING": "second"},
                                        kernels=kernels))
    # the same place, environment, backend and figure (an inline PNG) as a fresh kernel's
    for key in ("cwd", "path", "argv0", "threads", "backend", "seen_before"):
        assert first[key] == fresh[key], key
    assert first["cwd"] == str(tmp_path)
    assert first["argv0"].startswith("ipykernel_launcher")
    assert figures == fresh_figures == [["image/png", "text/plain"]]
    assert first["threads"] == "1" and first["setting"] == "first" and second["setting"] == "second"
    # a process of its own each time: nothing left by the notebook before, its own random draws
    assert len({fresh["pid"], first["pid"], second["pid"]}) == 3
    assert not first["seen_before"] and not second["seen_before"]
    assert first["draw"] != second["draw"]
    # and the imports were paid by the warm interpreter, not by the kernel
    assert first["cpu"] < fresh["cpu"] / 2, (first["cpu"], fresh["cpu"])


def test_a_kernel_whose_start_up_environment_differs_starts_fresh(kernels, tmp_path):
    assert kernels.manager_for(kernel_env({**REFERENCE_ENV, "DLNN_ANYTHING": "1"})) is not None
    assert kernels.manager_for(kernel_env({**REFERENCE_ENV, "OMP_NUM_THREADS": "2"})) is None
    assert kernels.manager_for(kernel_env()) is None, "without the reference environment"
    facts, _ = _facts(execute_notebook(_probe(tmp_path), env={"OMP_NUM_THREADS": "2"},
                                       kernels=kernels))
    assert facts["threads"] == "2"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_a_cell_past_its_time_is_interrupted_and_the_kernel_goes(kernels, tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        f"import os\nopen({str(tmp_path / 'pid')!r}, 'w').write(str(os.getpid()))\n"
        "import time\ntime.sleep(60)")]
    path = tmp_path / "slow.ipynb"
    nbformat.write(nb, path)
    start = time.monotonic()
    with pytest.raises(CellTimeoutError):
        execute_notebook(path, timeout=3, env=REFERENCE_ENV, kernels=kernels)
    assert time.monotonic() - start < 30
    pid = int((tmp_path / "pid").read_text())
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid), "the kernel outlived its notebook"


def test_closing_stops_the_warm_interpreter_and_its_kernels(tmp_path):
    warm = WarmKernels(kernel_env(REFERENCE_ENV))
    zygote = warm.process.pid
    facts, _ = _facts(execute_notebook(_probe(tmp_path), env=REFERENCE_ENV, kernels=warm))
    assert facts["pid"] != zygote
    warm.close()
    assert not _alive(zygote) and not warm.folder.exists()
    assert warm.manager_for(kernel_env(REFERENCE_ENV)) is None, "a closed one forks nothing"


def test_a_launcher_killed_takes_its_kernel_with_it(kernels, tmp_path):
    import subprocess
    import sys

    connection = tmp_path / "kernel.json"
    launcher = subprocess.Popen(
        [sys.executable, "-m", "coursebuild.kernel_launcher", str(kernels.socket), "-f",
         str(connection), "--IPKernelApp.log_level=ERROR"],
        env={**kernel_env(REFERENCE_ENV)}, cwd=tmp_path, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not connection.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert connection.exists(), "the forked kernel wrote its connection file"
    kernel = [pid for pid in _children(kernels.process.pid)]
    assert len(kernel) == 1
    launcher.send_signal(signal.SIGKILL)
    launcher.wait()
    deadline = time.monotonic() + 10
    while _alive(kernel[0]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(kernel[0])
    # and the warm interpreter still forks kernels for the next notebooks
    facts, _ = _facts(execute_notebook(_probe(tmp_path), env=REFERENCE_ENV, kernels=kernels))
    assert facts["pid"] != kernel[0] and kernels.process.poll() is None


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def test_a_warm_interpreter_that_cannot_start_says_why(tmp_path):
    (tmp_path / "torch.py").write_text("raise RuntimeError('this torch is broken')\n")
    with pytest.raises(WarmKernelsError, match="this torch is broken"):
        WarmKernels(kernel_env({**REFERENCE_ENV, "PYTHONPATH": str(tmp_path)}))


def test_the_warm_interpreter_goes_when_the_build_is_killed(tmp_path):
    import subprocess
    import sys

    build = subprocess.Popen(
        [sys.executable, "-c",
         "import time\nfrom coursebuild.build import REFERENCE_ENV, kernel_env\n"
         "from coursebuild.warm_kernels import WarmKernels\n"
         "warm = WarmKernels(kernel_env(REFERENCE_ENV))\n"
         "print(warm.process.pid, flush=True)\ntime.sleep(120)"],
        stdout=subprocess.PIPE, text=True)
    zygote = int(build.stdout.readline())
    assert _alive(zygote)
    build.kill()
    build.wait()
    build.stdout.close()
    deadline = time.monotonic() + 10
    while _alive(zygote) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(zygote), "a killed build left its warm interpreter running"


def test_the_build_starts_fresh_kernels_where_no_warm_interpreter_runs(monkeypatch, capsys):
    import contextlib

    from coursebuild import build

    monkeypatch.setattr(build.sys, "platform", "darwin")
    with contextlib.ExitStack() as stack:
        assert build.warm_kernels(stack) is None

    def broken(env):
        raise WarmKernelsError("the warm interpreter did not start (status 1):\nno torch")

    monkeypatch.setattr(build.sys, "platform", "linux")
    monkeypatch.setattr(build, "WarmKernels", broken)
    with contextlib.ExitStack() as stack:
        assert build.warm_kernels(stack) is None
    assert "a fresh kernel for every reference run" in capsys.readouterr().out


def test_a_kernel_and_its_launcher_gone_in_the_same_moment_stop_nothing(tmp_path):
    """Both events of one kernel can come in one ``select``: the kernel's exit handled first, its
    launcher's end of file is then passed over (it stopped the warm interpreter: a KeyError)."""
    import selectors
    import socket

    from coursebuild.zygote import Zygote

    zygote = Zygote(str(tmp_path / "zygote.sock"))
    ours, launchers = socket.socketpair()
    pid = os.posix_spawn("/bin/true", ["true"], dict(os.environ))
    pidfd = os.pidfd_open(pid)
    zygote.kernels[pid], zygote.pidfds[pid] = ours, pidfd
    zygote.selector.register(pidfd, selectors.EVENT_READ, ("exited", pid))
    zygote.selector.register(ours, selectors.EVENT_READ, ("launcher", pid))
    launchers.close()  # the launcher is gone too
    events = [key.data for key, _ in zygote.selector.select(timeout=10)]
    deadline = time.monotonic() + 10
    while len(events) < 2 and time.monotonic() < deadline:
        events = [key.data for key, _ in zygote.selector.select(timeout=1)]
    assert sorted(events) == [("exited", pid), ("launcher", pid)]
    zygote._exited(pid)
    zygote._from_launcher(pid)
    assert zygote.kernels == {} and zygote.pidfds == {} and zygote.selector.get_map().keys() == {
        zygote.listener.fileno()}
    zygote.listener.close()
    zygote.selector.close()
