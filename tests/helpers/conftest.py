"""Fixtures of the helper tests that draw figures in this process."""

from __future__ import annotations

import gc
import warnings

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture
def no_warnings_and_close():
    """Any warning raised while the test runs fails it; the figures it leaves open are closed
    (and none is open when it starts, so that a test counts only its own).

    Resource warnings are left out: they come from the garbage of earlier tests of the same
    process (a kernel client's socket), collected whenever the collector runs, not from the code
    under test; that garbage is collected before the test starts.
    """
    plt.close("all")
    gc.collect()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("default", ResourceWarning)
        yield
    plt.close("all")
