"""Reproducibility and device helpers shared by every tutorial."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import numpy as np
import torch


def set_seed(seed: int = 2021, *, deterministic: bool = True, verbose: bool = True) -> None:
    """Seed Python's, NumPy's and torch's global generators so that a notebook is reproducible.

    Data generators in this package take their own ``random_state`` and do not depend on this;
    it only fixes the initial weights of networks and other draws from the global generators.

    Parameters
    ----------
    seed : int
        The seed (non-negative).
    deterministic : bool
        Also ask torch for deterministic cuDNN kernels on a GPU.
    verbose : bool
        Print the seed that was set.

    Returns
    -------
    None
        Nothing, so that a set-up cell ending with ``dlnn.set_seed(SEED)`` shows no stray ``Out:``
        value.
    """
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    if verbose:
        print(f"Random seed {seed} has been set.")


def set_device(verbose: bool = True) -> str:
    """Return ``"cuda"`` when a GPU is available and ``"cpu"`` otherwise.

    Parameters
    ----------
    verbose : bool
        Print which device the notebook will use.

    Returns
    -------
    device : str
    """
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if verbose:
        if device == "cpu":
            print("Running on the CPU (every tutorial here runs fine without a GPU).")
        else:
            print("Running on the GPU.")
    return device


@contextlib.contextmanager
def torch_threads(n: int | None = 1) -> Iterator[None]:
    """Let torch use ``n`` threads inside the block, then restore the previous setting.

    The course's training loops are long sequences of small operations.  On them one thread is as
    fast as two on an idle machine, and many times faster when another process is busy (measured
    on a 2-core machine: 0.6 s against 8.9 s for tutorial 1's training), because threads then wait
    for each other.  ``None`` leaves the setting alone.
    """
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
