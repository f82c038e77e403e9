"""A stand-in grading function whose process dies on one job (not a test module; stdlib only, so
that the processes spawned to run it start fast)."""

from __future__ import annotations

import multiprocessing
import os


def grade(job: str) -> str:
    """``"graded <job>"``; the worker process dies (as if killed for memory) on ``"killer"``."""
    if job == "killer" and multiprocessing.parent_process() is not None:
        os._exit(9)
    return f"graded {job}"
