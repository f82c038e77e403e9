"""The process ``jupyter_client`` starts for a kernel of the warm interpreter (:mod:`coursebuild.zygote`).

``python -m coursebuild.kernel_launcher SOCKET -f CONNECTION_FILE [kernel options]`` in place of
``python -m ipykernel_launcher -f CONNECTION_FILE [kernel options]``.  It imports nothing but the
standard library (a few milliseconds), asks the warm interpreter listening on ``SOCKET`` for a
kernel with its own arguments, environment, working folder and standard streams, then stands for
that kernel: the signals it receives (an interrupt, a termination) are passed on, and it exits with
the kernel's status.  Killed, it takes the kernel with it (the warm interpreter kills a kernel whose
launcher has gone).  When the warm interpreter cannot be reached, it says so on stderr and exits
with status 3 (the notebook client then reports that the kernel died).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
             signal.SIGUSR2)


def main(argv: list[str]) -> int:
    path, kernel_argv = argv[0], argv[1:]
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(path)
        request = json.dumps({"argv": kernel_argv, "env": dict(os.environ), "cwd": os.getcwd()})
        socket.send_fds(connection, [request.encode() + b"\n"], [0, 1, 2])
    except OSError as error:
        print(f"the warm interpreter at {path} cannot start a kernel: {error}", file=sys.stderr)
        return 3
    stream = connection.makefile("rb")

    def forward(number, _frame):
        try:
            connection.sendall(json.dumps({"signal": number}).encode() + b"\n")
        except OSError:
            pass

    for number in FORWARDED:
        signal.signal(number, forward)
    for line in stream:
        message = json.loads(line)
        if "exit" in message:
            status = int(message["exit"])
            if status < 0:  # killed by a signal: so is this process, as the kernel's stand-in
                signal.signal(-status, signal.SIG_DFL)
                os.kill(os.getpid(), -status)
            return 128 - status if status < 0 else status
    print("the warm interpreter went away before the kernel exited", file=sys.stderr)
    return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
