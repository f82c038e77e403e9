"""dlnn_helpers.utils: seeds, the device and torch's thread count, shared by every tutorial."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

import dlnn_helpers as dlnn
from dlnn_helpers.utils import torch_threads


def test_set_seed_and_device(capsys):
    assert dlnn.set_seed(5) is None  # a set-up cell ending with set_seed shows no stray Out: value
    a = torch.rand(2)
    dlnn.set_seed(5, verbose=False)
    assert torch.equal(a, torch.rand(2))
    assert "Random seed 5" in capsys.readouterr().out


@pytest.mark.parametrize(("available", "expected", "said"), [(True, "cuda", "GPU"), (False, "cpu", "CPU")])
def test_set_device_is_cuda_exactly_when_a_gpu_is_available(monkeypatch, capsys, available, expected, said):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    assert dlnn.set_device() == expected
    assert said in capsys.readouterr().out
    assert dlnn.set_device(verbose=False) == expected
    assert capsys.readouterr().out == ""


def test_set_seed_seeds_python_numpy_and_torch_alike():
    dlnn.set_seed(11, verbose=False)
    first = (random.random(), np.random.rand(3), torch.rand(3))  # noqa: NPY002 - the global generators
    dlnn.set_seed(11, verbose=False)
    again = (random.random(), np.random.rand(3), torch.rand(3))  # noqa: NPY002
    assert first[0] == again[0] and np.array_equal(first[1], again[1]) and torch.equal(first[2], again[2])
    dlnn.set_seed(12, verbose=False)
    assert random.random() != first[0]
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark


@pytest.mark.parametrize("n", [1, 2])
def test_torch_threads_sets_the_count_inside_and_restores_it_after(n):
    before = torch.get_num_threads()
    with torch_threads(n):
        assert torch.get_num_threads() == n
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError, match="inside"), torch_threads(n):
        raise RuntimeError("inside")  # restored after an error too
    assert torch.get_num_threads() == before


def test_torch_threads_none_leaves_the_setting_alone():
    before = torch.get_num_threads()
    with torch_threads(None):
        assert torch.get_num_threads() == before
    assert torch.get_num_threads() == before
