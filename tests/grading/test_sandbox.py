"""The grading sandbox against the attacks of issue 14, each as a small script run in it.

Every test runs a few lines of Python through the very jail that starts a kernel
(:class:`~autograder.grading.sandbox.Box`), or one tiny notebook through
:func:`~autograder.grading.execution.execute`, and asserts the safe outcome: what the script cannot
see, reach, keep or exhaust.  Where this machine lacks a protection (not root, no bubblewrap, no
control group), the test asserts that the grader reports it as missing, then skips with a one-line
reason, except in CI (``CI=true``), which installs bubblewrap and runs as root: there a missing
protection fails the test.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import pytest

from autograder.grading import execution as grading_execution
from autograder.grading import sandbox
from autograder.grading.sandbox import (
    FIRST_UID,
    SCRATCH,
    UID_RANGE,
    Box,
    SandboxSettings,
    cgroups,
    controls,
    sandbox_description,
    sandbox_warnings,
    visible_paths,
)

from ..tools import ROOT

pytestmark = pytest.mark.grading

FOUND = controls()


def _needs(what: str) -> None:
    """Skip unless this machine has ``what``; if it lacks it, the grader must say so first."""
    missing = {
        "bwrap": not FOUND.bwrap,
        "root": not FOUND.root,
        "memory": "memory" not in FOUND.cgroups.parents,
        "pids": "pids" not in FOUND.cgroups.parents,
        "disk": not FOUND.disk,
    }[what]
    if missing:
        warnings = " ".join(sandbox_warnings(SandboxSettings()))
        word = {"bwrap": "no bubblewrap" if FOUND.chroot else "no sandbox", "root": "not root",
                "memory": "no memory control group", "pids": "no pids control group",
                "disk": "no disk quota"}[what]
        assert word in warnings, f"{what} is missing but the grader does not say so: {warnings}"
        assert "NOT IN FORCE" in sandbox_description(SandboxSettings())
        if os.environ.get("CI", "").lower() in ("true", "1"):  # CI has it all: missing is a failure
            pytest.fail(f"this CI machine lacks {what} (reported: {word}); .ci/run installs "
                        "bubblewrap and runs as root")
        pytest.skip(f"this machine lacks {what} (reported: {word})")


@pytest.fixture(params=["bwrap", "chroot"])
def sandbox_kind(request, monkeypatch) -> str:
    """Each file-system, network and IPC attack runs in both sandboxes: bubblewrap's, and the one
    the grader builds itself as root where bubblewrap is missing (forced here by hiding it)."""
    if request.param == "bwrap":
        _needs("bwrap")
    else:
        _needs("root")
        if not sandbox.machine._can_unshare_mounts():
            pytest.skip("root cannot make mount namespaces here (the grader reports no sandbox)")
        hidden = dataclasses.replace(FOUND, bwrap=None, bwrap_problem="hidden for this test",
                                     chroot=True)
        _probed(monkeypatch, hidden)
    return request.param


def _probed(monkeypatch, found: sandbox.Controls) -> None:
    """The machine offers ``found`` (to the probe's callers: the report, the box, the warm slots)."""
    for module in (sandbox.machine, sandbox.kernel):
        monkeypatch.setattr(module, "controls", lambda isolate=True: found)


def _run(code: str, settings: SandboxSettings | None = None, timeout: float = 60) -> str:
    with Box(settings or SandboxSettings()) as box:
        done = box.run(textwrap.dedent(code), timeout=timeout)
    assert done.returncode == 0, done.stdout
    return done.stdout


def _json(code: str, settings: SandboxSettings | None = None) -> dict:
    """Run ``code``, which prints one JSON line last; return it."""
    return json.loads(_run(code, settings).strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------
# What exists inside
# ------------------------------------------------------------------------------------------------

LIST_EVERYTHING = """
import json, os
mounts = [line.split()[4] for line in open('/proc/self/mountinfo')]
top = sorted(os.listdir('/'))
walked = []
for folder, dirs, files in os.walk('/'):
    if folder in ('/proc', '/dev', '/sys/devices/system/cpu') or folder.startswith(
            ('/proc/', '/usr/', '/sandbox/', '/root/.pyenv/versions/', '/sys/devices/system/cpu/')):
        dirs[:] = []
    walked.append(folder)
print(json.dumps({'mounts': mounts, 'top': top, 'walked': walked}))
"""


def test_only_the_allow_list_is_visible(sandbox_kind):
    seen = _json(LIST_EVERYTHING)
    allowed = set(visible_paths())
    expected_mounts = allowed - set(sandbox.TOP_LINKS) | {"/", "/proc", "/dev", "/tmp", "/dev/shm"}
    # Installed copies of the course's packages inside a bound folder are hidden (empty mounts).
    python_binds = [(source, target, "ro") for source, target in sandbox.jail._python_binds()[0]]
    expected_mounts |= {target for _, target, _ in sandbox.masks(python_binds, "/")}
    if sandbox_kind == "chroot":  # the grader's own root holds these as plain files and folders
        expected_mounts -= {*sandbox.jail._etc_files(0), "/dev"}
    extra = {m for m in seen["mounts"] if m not in expected_mounts and not m.startswith("/dev/")}
    assert extra == set(), f"mounted in the sandbox beyond the allow-list: {extra}"
    assert expected_mounts <= set(seen["mounts"])
    # Every folder reached from / is an allow-listed path, a folder above one, or in the scratch.
    for folder in seen["walked"]:
        assert (folder in ("/", "/tmp", "/etc", "/sandbox", "/proc", "/dev", "/sys")
                or any(folder == p or p.startswith(folder + "/") or folder.startswith(p + "/")
                       for p in allowed)), f"{folder} is visible in the sandbox"
    for absent in ("/run", "/run/lock", "/home", "/var", "/srv", "/opt", "/mnt", "/media", "/boot",
                   "/work", str(ROOT), str(Path.home() / ".ssh"), "/etc/shadow"):
        if not any(p == absent or p.startswith(absent + "/") for p in allowed):
            assert not any(f == absent or f.startswith(absent + "/") for f in seen["walked"]), absent
            assert absent.count("/") > 1 or absent[1:] not in seen["top"], absent


def test_no_checkout_of_the_course_and_nothing_next_to_the_input(sandbox_kind, tmp_path):
    clone = tmp_path / "another-clone" / "solutions" / "T1"
    clone.mkdir(parents=True)
    (clone / "T1.ipynb").write_text("the reference answers")
    (tmp_path / "another-clone").chmod(0o755)
    seen = _json(f"""
    import json, os
    paths = {[str(ROOT), str(ROOT / 'solutions'), str(ROOT / 'dlnn_helpers'), str(clone / 'T1.ipynb'),
              str(tmp_path), '/var/tmp', '/etc/shadow']!r}
    print(json.dumps({{p: os.path.exists(p) for p in paths}}))
    """)
    assert not any(seen.values()), seen


def test_read_only_except_the_scratch_folder(sandbox_kind):
    seen = _json("""
    import json, os
    result = {}
    for folder in ('/', '/etc', '/usr/lib', '/sandbox/env', '/sandbox/lib', '/dev',
                   '/sys/devices/system/cpu'):
        try:
            with open(os.path.join(folder, 'planted'), 'w') as stream:
                stream.write('x')
            result[folder] = 'written'
        except OSError as exc:
            result[folder] = type(exc).__name__
    for folder in ('/scratch', '/tmp', '/dev/shm'):
        with open(os.path.join(folder, 'mine'), 'w') as stream:
            stream.write('x')
        result[folder] = 'written'
    print(json.dumps(result))
    """)
    assert [f for f, what in seen.items() if what == "written"] == [SCRATCH, "/tmp", "/dev/shm"]


def test_no_namespace_or_privilege_can_be_made_inside(sandbox_kind):
    seen = _json("""
    import ctypes, json, os
    libc = ctypes.CDLL(None, use_errno=True)
    result = {'uid': os.getuid(), 'hostname': os.uname().nodename}
    for name, flag in (('user', 0x10000000), ('mount', 0x00020000), ('net', 0x40000000)):
        result[name] = libc.unshare(flag) == 0
    result['setuid0'] = libc.setuid(0) == 0
    print(json.dumps(result))
    """)
    assert not (seen["user"] or seen["mount"] or seen["net"] or seen["setuid0"]), seen
    assert seen["hostname"] == "sandbox"
    if FOUND.root:
        assert FIRST_UID <= seen["uid"] < FIRST_UID + UID_RANGE


# ------------------------------------------------------------------------------------------------
# Processes, sockets, shared memory
# ------------------------------------------------------------------------------------------------


def test_no_host_process_no_command_line_no_signal():
    _needs("bwrap")
    secret = "--db-url=postgresql://grader:s3cr3t-4b1f@dbhost/dlnn"
    host = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", secret])
    try:
        seen = _json(f"""
        import json, os, signal
        lines = []
        for pid in os.listdir('/proc'):
            if pid.isdigit():
                try:
                    lines.append(open(f'/proc/{{pid}}/cmdline', 'rb').read().decode(errors='replace'))
                except OSError:
                    pass
        try:
            os.kill({host.pid}, 0)
            reach = 'reachable'
        except OSError as exc:
            reach = type(exc).__name__
        print(json.dumps({{'cmdlines': lines, 'reach': reach, 'ppid': os.getppid()}}), flush=True)
        for target in (1, -1):
            try:
                os.kill(target, signal.SIGKILL)
            except OSError:
                pass
        """)
    finally:
        alive = host.poll() is None
        host.kill()
        host.wait()
    assert alive, "a sandboxed script killed a host process"
    assert not any("s3cr3t" in line for line in seen["cmdlines"])
    assert len(seen["cmdlines"]) <= 3, seen["cmdlines"]  # bubblewrap's init, python, (a child)
    assert seen["reach"] == "ProcessLookupError"


def test_no_host_unix_socket_no_network(sandbox_kind, tmp_path):
    path = Path("/run") / f"dlnn-sandbox-test-{os.getpid()}.sock"
    if not Path("/run").is_dir():
        path = tmp_path / "host.sock"
    listeners = []
    for family, address in ((socket.AF_UNIX, str(path)),
                            (socket.AF_UNIX, f"\0dlnn-sandbox-test-{os.getpid()}"),
                            (socket.AF_INET, ("127.0.0.1", 0))):
        server = socket.socket(family, socket.SOCK_STREAM)
        server.bind(address)
        if family == socket.AF_UNIX and not address.startswith("\0"):
            os.chmod(address, 0o777)
        server.listen(4)
        server.setblocking(False)
        listeners.append(server)
    port = listeners[2].getsockname()[1]
    try:
        seen = _json(f"""
        import json, socket
        result = {{}}
        for name, family, address in (('path', socket.AF_UNIX, {str(path)!r}),
                                      ('abstract', socket.AF_UNIX, '\\0dlnn-sandbox-test-{os.getpid()}'),
                                      ('tcp', socket.AF_INET, ('127.0.0.1', {port}))):
            client = socket.socket(family, socket.SOCK_STREAM)
            client.settimeout(2)
            try:
                client.connect(address)
                result[name] = 'connected'
            except OSError as exc:
                result[name] = type(exc).__name__
        print(json.dumps(result))
        """)
        accepted = 0
        for server in listeners:
            try:
                server.accept()
                accepted += 1
            except BlockingIOError:
                pass
    finally:
        for server in listeners:
            server.close()
        path.unlink(missing_ok=True)
    assert "connected" not in seen.values(), seen
    assert accepted == 0


SYSV = """
import ctypes, json, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
KEY, IPC_CREAT = 0x444C4E4E, 0o1000
mode = sys.argv[1] if len(sys.argv) > 1 else MODE
if mode == 'plant':
    shm = libc.shmget(KEY, 4096, IPC_CREAT | 0o666)
    address = libc.shmat(shm, None, 0)
    ctypes.memmove(address, b'answer=42', 9)
    queue = libc.msgget(KEY, IPC_CREAT | 0o666)
    print(json.dumps({'shm': shm, 'queue': queue}), flush=True)
    import time
    time.sleep(float(WAIT))
else:
    print(json.dumps({'shm': libc.shmget(KEY, 0, 0), 'queue': libc.msgget(KEY, 0)}))
"""


def test_sysv_shared_memory_neither_crosses_nor_outlives_a_run(sandbox_kind):
    with Box(SandboxSettings()) as planter:
        process = planter.start(SYSV.replace("MODE", "'plant'").replace("WAIT", "20"))
        for _ in range(200):  # until the segment and the queue exist in the first sandbox
            if planter.log().strip():
                break
            time.sleep(0.05)
        planted = json.loads(planter.log().strip().splitlines()[-1])
        assert planted["shm"] >= 0 and planted["queue"] >= 0
        looked = _json(SYSV.replace("MODE", "'look'"))  # a second sandbox, at the same time
        host = _json_on_host(SYSV.replace("MODE", "'look'"))
        process.kill()
        process.wait()
    after = _json_on_host(SYSV.replace("MODE", "'look'"))
    assert looked == {"shm": -1, "queue": -1}
    assert host == {"shm": -1, "queue": -1}
    assert after == {"shm": -1, "queue": -1}


def _json_on_host(code: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------
# Limits for the submission as a whole
# ------------------------------------------------------------------------------------------------

CHILDREN = """
import json, os, time
children = []
for _ in range(3):
    pid = os.fork()
    if pid == 0:
        hog = b'x' * (120 * 2**20)   # written, so it is really used
        time.sleep(3)
        os._exit(0)
    children.append(pid)
ends = []
for pid in children:
    _, status = os.waitpid(pid, 0)
    ends.append(status)
print(json.dumps({'ends': ends}))
"""


def test_memory_is_bounded_for_all_processes_together():
    _needs("memory")
    settings = SandboxSettings(memory_bytes=256 * 2**20)  # each child's 120 MiB fits its RLIMIT_AS
    with Box(settings) as box:
        done = box.run(CHILDREN)
        peak, killed = box.group.memory_peak(), box.group.oom_kills()
        problems = box.finish()
    assert killed >= 1, done.stdout
    assert peak is not None and peak <= settings.memory_bytes
    assert any("together needed more than 256 MiB" in p for p in problems), problems
    ends = json.loads(done.stdout.strip().splitlines()[-1])["ends"] if done.stdout.strip() else []
    assert not ends or any(os.WIFSIGNALED(e) and os.WTERMSIG(e) == signal.SIGKILL for e in ends)


def test_a_fork_bomb_stops_at_the_process_limit():
    _needs("pids")
    settings = SandboxSettings(processes=40)
    with Box(settings) as box:
        done = box.run("""
import os, time
count = 0
for _ in range(1000):
    try:
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        count += 1
    except OSError:
        break
print(count)
""")
        inside = len(box.group.pids())
        problems = box.finish()
        after = len(box.group.pids())
    assert int(done.stdout.split()[-1]) < 40
    assert inside <= 40 and after == 0
    assert any("more than 40 processes" in p for p in problems), problems


def test_disk_is_bounded_by_the_scratch_tmpfs():
    _needs("disk")
    settings = SandboxSettings(scratch_bytes=32 * 2**20)
    with Box(settings) as box:
        scratch = box.scratch
        seen = _json_from(box, """
import json, os
written = 0
for number in range(16):
    folder = ('/scratch', '/tmp', '/dev/shm')[number % 3]
    try:
        with open(f'{folder}/fill-{number}', 'wb') as stream:
            for _ in range(8):
                stream.write(b'x' * 2**20)
                written += 2**20
    except OSError as exc:
        os.remove(f'{folder}/fill-{number}')  # room for this report (the log is in the scratch)
        print(json.dumps({'written': written, 'error': exc.strerror}))
        break
else:
    print(json.dumps({'written': written, 'error': None}))
""")
        assert os.path.ismount(scratch)
        with open(scratch / "refill", "wb") as stream:  # what the script freed to report, refilled
            while True:
                try:
                    stream.write(b"x" * 2**16)
                    stream.flush()
                except OSError:
                    break
        problems = box.finish()
    assert seen["error"] == "No space left on device"
    assert seen["written"] <= settings.scratch_bytes
    assert any("filled its scratch folder" in p for p in problems)
    assert not os.path.ismount(scratch) and not scratch.exists()


def _json_from(box: Box, code: str) -> dict:
    done = box.run(textwrap.dedent(code))
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------
# Graders side by side, graders killed
# ------------------------------------------------------------------------------------------------


def test_two_graders_get_disjoint_uids_and_cannot_signal_each_other():
    _needs("root")
    _needs("bwrap")
    other = (
        "from autograder.grading.sandbox import Box, SandboxSettings\n"
        "box = Box(SandboxSettings())\nprint(box.uid, box.slot.number)\nbox.close()\n"
    )
    with Box(SandboxSettings()) as first, Box(SandboxSettings()) as second:
        elsewhere = subprocess.run([sys.executable, "-c", other], capture_output=True, text=True,
                                   check=True, cwd=ROOT).stdout.split()
        sleeper = second.start("import time\nprint('up', flush=True)\ntime.sleep(30)")
        for _ in range(200):
            if "up" in second.log():
                break
            time.sleep(0.05)
        victims = _uid_processes(second.uid)
        assert victims, "the second sandbox did not start"
        first.run(f"""
import os, signal
for target in {sorted(victims)!r} + [-1]:
    try:
        os.kill(target, signal.SIGKILL)
    except OSError:
        pass
""")
        survived = _uid_processes(second.uid)
        sleeper.kill()
        sleeper.wait()
        uids = {first.uid, second.uid, int(elsewhere[0])}
    assert len(uids) == 3 and all(FIRST_UID <= u < FIRST_UID + UID_RANGE for u in uids)
    assert survived == victims


def _uid_processes(uid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and entry.stat().st_uid == uid:
                found.add(int(entry.name))
        except OSError:
            continue
    return found


GRADER = """
from autograder.grading.runner import worker_pool

def grade():  # in a worker of the grader's own pool (forked from its server process)
    import nbformat
    from autograder.grading.sandbox import SandboxSettings
    from autograder.grading.model import TutorialSpec
    from autograder.grading.model import Job
    from autograder.grading.worker import grade_submission
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        'import os, time\\nif os.fork() == 0:\\n    os.setsid()\\ntime.sleep(120)')]
    spec = TutorialSpec('T0', nbformat.from_dict(nb), [], {}, {})
    job = Job(0, 'student', 'T0', 'file', nbformat.writes(nb).encode(), spec, SandboxSettings())
    return grade_submission(job)

if __name__ == '__main__':
    with worker_pool(1) as pool:
        pool.submit(grade).result()
"""


def _descendants(root: int) -> dict[int, int]:
    """Process id -> uid of every descendant of ``root`` now."""
    parents, uids = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:  # both or neither: the process may end between the two reads
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            uid = entry.stat().st_uid
        except (OSError, ValueError, IndexError):
            continue
        parents[int(entry.name)], uids[int(entry.name)] = ppid, uid
    found, todo = {}, [root]
    while todo:
        parent = todo.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                found[pid] = uids[pid]
                todo.append(pid)
    return found


def test_a_killed_grader_leaves_no_process_behind(tmp_path):
    """The real wiring: a worker of the grader's pool (forked from the pool's server process)
    grading a notebook whose kernel daemonises a child."""
    _needs("root")
    _needs("bwrap")
    script = tmp_path / "grader.py"
    script.write_text(GRADER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    grader = subprocess.Popen([sys.executable, str(script)], env=env, cwd=ROOT)
    try:
        before: dict[int, int] = {}
        for _ in range(3600):  # the kernel and its daemonised child (up to 3 min on a loaded machine)
            before = _descendants(grader.pid)
            if sum(FIRST_UID <= uid < FIRST_UID + UID_RANGE for uid in before.values()) >= 4:
                break
            time.sleep(0.05)
        time.sleep(1)
        before = _descendants(grader.pid)
        os.kill(grader.pid, signal.SIGKILL)
        grader.wait()
        for _ in range(200):
            left = {pid for pid in before if Path(f"/proc/{pid}").exists()}
            if not left:
                break
            time.sleep(0.05)
    finally:
        if grader.poll() is None:
            grader.kill()
            grader.wait()
    sandboxed = {pid for pid, uid in before.items() if FIRST_UID <= uid < FIRST_UID + UID_RANGE}
    assert len(sandboxed) >= 4, before  # bubblewrap (2), the kernel, its daemonised child
    assert left == set(), f"left behind: {left}"
    # What the killed grader left of its slot (its tmpfs) is cleared by the next job taking it.
    slot = min(sandboxed_uid for sandboxed_uid in before.values()
               if FIRST_UID <= sandboxed_uid < FIRST_UID + UID_RANGE) - FIRST_UID
    scratch = sandbox.scratch_base() / "jobs" / f"s{slot}"
    with Box(SandboxSettings()) as box:
        if box.slot.number == slot:
            assert box.scratch == scratch and os.path.ismount(scratch)  # mounted afresh
            assert not (scratch / "kernel.json").exists()  # the killed job's files are gone


# ------------------------------------------------------------------------------------------------
# Widget and comm messages, the report
# ------------------------------------------------------------------------------------------------


def test_widget_and_comm_messages_count_against_the_output_cap(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(textwrap.dedent("""
            from comm import create_comm
            channel = create_comm(target_name='jupyter.widget', data={'state': {
                '_model_module': 'x', '_model_name': 'y', 'value': ''}, 'buffer_paths': []})
            for _ in range(400):
                channel.send({'method': 'update', 'state': {'value': 'x' * 50_000},
                              'buffer_paths': []})
            """)),
        nbformat.v4.new_code_cell("print('still running')"),
        nbformat.v4.new_code_cell("raise ValueError('a failing test after the cap')"),
        nbformat.v4.new_code_cell("import sys\nsys.stderr.write('a warning after the cap')")]
    settings = SandboxSettings(max_output_bytes=2**18, cell_timeout=60)
    execution = grading_execution.execute(nb, 0, settings, {}, tmp_path / "job")
    assert any("printed more than" in p for p in execution.problems), execution.problems
    assert len(json.dumps(execution.notebook)) < 2 * settings.max_output_bytes  # of 20 MB sent
    assert nb.cells[1].execution_count is not None  # the next cell still ran
    # What a verdict depends on is kept: filling the output cannot hide a failing test.
    assert [(o.output_type, o.get("ename")) for o in nb.cells[2].outputs] == [("error",
                                                                               "ValueError")]
    assert [o.get("name") for o in nb.cells[3].outputs] == ["stderr"]


def test_the_limits_in_force_are_reported():
    settings = SandboxSettings()
    text = sandbox_description(settings)
    if FOUND.bwrap:
        assert "bubblewrap" in text and "without network" in text
    if FOUND.root and FOUND.bwrap:
        assert "unprivileged user" in text
    for name in FOUND.cgroups.parents:
        assert f"{name}: cgroup v{FOUND.cgroups.parents[name][0]}" in text
    assert bool(sandbox_warnings(settings)) == ("NOT IN FORCE" in text)
    weak = sandbox.Controls(False, None, "bwrap is not installed",
                            cgroups.Layout(missing={"memory": "needs root", "pids": "needs root"}),
                            False, "needs root")
    lines = weak.unavailable()
    for word in ("no sandbox", "not root", "no memory control group", "no pids control group",
                 "no disk quota"):
        assert any(word in line for line in lines), word


def test_cgroup_v2_groups_are_made_and_limited(tmp_path):
    """The v2 path, on a fake hierarchy (this machine mounts v1)."""
    root = tmp_path / "cgroup"
    own = root / "grader.slice"
    own.mkdir(parents=True)
    for folder in (root, own):
        (folder / "cgroup.controllers").write_text("cpu memory pids\n")
        (folder / "cgroup.subtree_control").write_text("\n")
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(f"41 31 0:38 / {root} rw,relatime - cgroup2 cgroup2 rw\n")
    proc = tmp_path / "cgroup-of-self"
    proc.write_text("0::/grader.slice\n")
    (own / cgroups.GROUP).mkdir()  # a real hierarchy makes the control files with the folder
    (own / cgroups.GROUP / "cgroup.subtree_control").write_text("\n")
    layout = cgroups.detect(mountinfo, proc)
    assert layout.missing == {}
    assert {name: version for name, (version, _) in layout.parents.items()} == {"memory": 2,
                                                                                 "pids": 2}
    parent = layout.parents["memory"][1]
    assert parent == own / cgroups.GROUP
    assert "+memory" in (own / "cgroup.subtree_control").read_text()
    job = cgroups.JobGroup(layout, "s7", 3 * 2**30, 99)
    assert (parent / "s7" / "memory.max").read_text() == str(3 * 2**30)
    assert (parent / "s7" / "memory.swap.max").read_text() == "0"
    assert (parent / "s7" / "pids.max").read_text() == "99"
    assert job.procs_files == [str(parent / "s7" / "cgroup.procs")]
    (parent / "s7" / "memory.events").write_text("low 0\nhigh 0\nmax 4\noom 1\noom_kill 2\n")
    assert job.oom_kills() == 2


def test_without_any_controller_the_reason_is_given(tmp_path):
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text("31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n")
    proc = tmp_path / "cgroup-of-self"
    proc.write_text("0::/\n")
    layout = cgroups.detect(mountinfo, proc)
    assert layout.parents == {}
    assert set(layout.missing) == {"memory", "pids"}
    assert all("neither a cgroup v1 hierarchy nor cgroup v2" in why for why in layout.missing.values())


def test_missing_protections_are_said_on_the_terminal_and_in_the_report(tmp_path, monkeypatch,
                                                                       capsys):
    from autograder.grading import runner

    weak = sandbox.Controls(False, None, "bubblewrap (bwrap) is not installed",
                            cgroups.Layout(missing={"memory": "needs root", "pids": "needs root"}),
                            False, "needs root")
    _probed(monkeypatch, weak)
    monkeypatch.setattr(runner, "_grade_locked", lambda *args, **kwargs: None)
    (tmp_path / "in").mkdir()
    lines: list[str] = []
    runner.grade_class(tmp_path / "in", tmp_path / "out", progress=lines.append)
    runner.grade_class(tmp_path / "in", tmp_path / "out", progress=None)  # --quiet: on stderr
    said = capsys.readouterr().err
    for word in ("no sandbox", "not root", "no memory control group", "no disk quota"):
        assert any(word in line for line in lines), word
        assert word in said, word
    report = sandbox_description(SandboxSettings())
    assert "NOT IN FORCE" in report and "bubblewrap (bwrap) is not installed" in report


def test_a_folder_that_holds_a_hidden_one_is_never_exposed(tmp_path):
    settings = SandboxSettings(hide=["/usr/lib/course-clone"])
    folders = sandbox.JobFolders(tmp_path / "scratch", tmp_path / "lib", tmp_path / "stage")
    with pytest.raises(RuntimeError, match="would expose /usr/lib/course-clone"):
        sandbox.jail_settings(folders, None, "/usr/bin/bwrap", settings, None, {})
    visible = {target for _, target, _ in sandbox.jail_settings(
        folders, None, "/usr/bin/bwrap", SandboxSettings(hide=[str(ROOT)]), None, {})["binds"]}
    assert str(ROOT) not in visible and not any(v.startswith(str(ROOT) + "/") for v in visible)


def test_a_slot_whose_leftovers_cannot_be_cleared_is_skipped_not_failed(monkeypatch):
    # A killed grader's remains (a busy scratch folder, a control group with dying processes) must
    # not fail another grader's job: the box keeps that slot locked while it takes the next one.
    real = sandbox.Box._prepare
    refused: list[int] = []

    def leftovers_once(self):
        if not refused:
            refused.append(self.slot.number)
            raise OSError(errno.EBUSY, "leftovers of a killed grader")
        real(self)

    monkeypatch.setattr(sandbox.Box, "_prepare", leftovers_once)
    with sandbox.Box(SandboxSettings()) as box:
        assert refused and box.slot.number != refused[0]
        fd = os.open(sandbox.staging._slot_folder() / str(refused[0]), os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released once the box was made
        finally:
            os.close(fd)
        assert box.run("print('ran')").stdout.strip() == "ran"


def test_a_box_gives_up_after_a_few_stale_slots(monkeypatch):
    def always(self):
        raise OSError(errno.EBUSY, "leftovers")

    monkeypatch.setattr(sandbox.Box, "_prepare", always)
    with pytest.raises(OSError, match="leftovers"):
        sandbox.Box(SandboxSettings())
