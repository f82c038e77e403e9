"""Fixtures of the helper tests that draw figures in this process."""

from __future__ import annotations

import warnings

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture
def no_warnings_and_close():
    """Any warning raised while the test runs fails it; the figures it leaves open are closed
    (and none is open when it starts, so that a test counts only its own)."""
    plt.close("all")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield
    plt.close("all")
