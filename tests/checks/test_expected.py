"""The expected values of the checks: shipped for the self-checks, live where the reference is."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import dlnn_reference
from dlnn_helpers.checks import CHECKS, _expected


@pytest.fixture
def demo(monkeypatch, tmp_path):
    """A check ``check_demo`` whose reference counts its calls; shipped files go to ``tmp_path``."""
    calls = []

    def compute(seed: int, shape: tuple) -> dict:
        calls.append((seed, shape))
        generator = torch.Generator().manual_seed(seed)
        values = torch.randn(*shape, generator=generator)
        return {"correct": values, "transposed": values.T.numpy().astype(np.float64),
                "scale": 2.5, "pair": (1, float("inf")), "name": "demo"}

    monkeypatch.setitem(dlnn_reference.EXPECTED, "check_demo", compute)
    monkeypatch.setitem(_expected._MODULES, "check_demo", "demo")
    monkeypatch.setattr(_expected, "SHIPPED", tmp_path)
    return calls


def test_values_survive_the_round_trip_exactly():
    value = {"t": torch.randn(3, 2, dtype=torch.float32), "d": torch.randn(4, dtype=torch.float64),
             "a": np.arange(6, dtype=np.int64).reshape(2, 3), "x": 1.0 / 3.0, "n": 7,
             "tup": (torch.zeros(0), [None, True, "s"]), "inf": -math.inf}
    back = _expected.decode(json.loads(json.dumps(_expected.encode(value))))
    assert torch.equal(back["t"], value["t"]) and back["t"].dtype == torch.float32
    assert torch.equal(back["d"], value["d"]) and back["d"].dtype == torch.float64
    assert np.array_equal(back["a"], value["a"]) and back["a"].dtype == np.int64
    assert back["x"] == value["x"] and back["n"] == 7 and back["inf"] == -math.inf
    assert isinstance(back["tup"], tuple) and back["tup"][1] == [None, True, "s"]
    with pytest.raises(TypeError, match="cannot ship"):
        _expected.encode(object())


def test_settings_key_is_canonical():
    one = _expected.settings_key("check_x", {"b": (1, 2), "a": 0.1, "act": torch.nn.ReLU})
    two = _expected.settings_key("check_x", {"act": torch.nn.ReLU, "a": 0.1, "b": [1, 2]})
    assert one == two and "torch.nn.modules.activation.ReLU" in one
    assert one != _expected.settings_key("check_x", {"b": (1, 2), "a": 0.2, "act": torch.nn.ReLU})


def test_captured_values_are_shipped_and_then_used_without_the_reference(demo, tmp_path):
    with _expected.capture() as captured:
        live = _expected.expected("check_demo", seed=1, shape=(2, 3))
    assert demo == [(1, (2, 3))]
    files = _expected.write_shipped(captured, tmp_path)
    assert [f.name for f in files] == ["demo.json"]
    first = files[0].read_bytes()
    _expected.write_shipped(captured, tmp_path)
    assert files[0].read_bytes() == first  # the same values give the same bytes

    with _expected.shipped_only():
        shipped = _expected.expected("check_demo", seed=1, shape=(2, 3))
        assert torch.equal(shipped["correct"], live["correct"])
        assert shipped["pair"] == (1, math.inf) and shipped["name"] == "demo"
        with pytest.raises(_expected.ReferenceUnavailable, match="judged by the course's grader"):
            _expected.expected("check_demo", seed=2, shape=(2, 3))
    assert demo == [(1, (2, 3))]  # the shipped value was used: the reference did not run again

    hidden = _expected.expected("check_demo", seed=2, shape=(2, 3))  # live, as on the grader
    assert demo[-1] == (2, (2, 3)) and hidden["correct"].shape == (2, 3)
    with _expected.live_only():
        _expected.expected("check_demo", seed=1, shape=(2, 3))
    assert demo[-1] == (1, (2, 3))


def test_a_reference_must_return_the_correct_value(demo, monkeypatch):
    monkeypatch.setitem(dlnn_reference.EXPECTED, "check_demo", lambda **s: {"wrong": 1})
    with pytest.raises(TypeError, match="'correct'"):
        _expected.expected("check_demo", seed=1, shape=(1,))


def test_every_shipped_file_is_up_to_date_with_the_references():
    from dlnn_reference import shipped

    assert shipped.stale() == [], "run: python scripts/course.py expected"


SHIPPED_BYTES = {"mlp": 25_000, "relu_features": 50_000}
"""Largest shipped file of a topic (the package stays small); 100 kB for the others."""


def test_every_shipped_file_is_small():
    sizes = {path.stem: path.stat().st_size for path in _expected.SHIPPED.glob("*.json")}
    assert set(sizes) == {e.topic for e in CHECKS.values()
                          if e.name in dlnn_reference.EXPECTED}, sizes
    assert all(size < SHIPPED_BYTES.get(topic, 100_000) for topic, size in sizes.items()), sizes


def test_every_registered_check_has_its_reference():
    """The answer key holds a self-check answer for every check, and the expected values of every
    check that asks for some (a check asks :func:`expected` by its own name only)."""
    assert set(dlnn_reference.ANSWERS) == set(CHECKS)
    assert set(dlnn_reference.EXPECTED) <= set(CHECKS)


@pytest.mark.parametrize("mode", ["shipped_only", "live_only"])
@pytest.mark.parametrize(("check", "args", "settings"), dlnn_reference.self_checks(),
                         ids=lambda v: getattr(v, "__name__", None) if callable(v) else None)
def test_every_self_check_passes_with_the_reference_answer(check, args, settings, mode):
    """On the shipped values alone (what a student has: no dlnn_reference), and live."""
    with getattr(_expected, mode)():
        summary = check(*args, **settings)
    assert isinstance(summary, str) and summary  # a check that passes returns its summary


# ------------------------------------------------------------------------------------------------
# Fresh or stale on another machine: a tolerance, never bitwise
# ------------------------------------------------------------------------------------------------


def _nudged(value, factor: float):
    """An encoded value with every float multiplied by ``factor`` (trajectories included)."""
    import base64

    from dlnn_reference import shipped

    if isinstance(value, list):
        return [_nudged(v, factor) for v in value]
    if not isinstance(value, dict):
        return value
    trajectory = shipped._trajectory(value)
    if trajectory is not None:
        data = (trajectory * factor).astype("<f4").tobytes()
        return {"tuple": [*value["tuple"][:2], base64.b64encode(data).decode("ascii")]}
    if "tensor" in value or "array" in value:
        kind = value.get("tensor", value.get("array"))
        if str(kind).startswith("float"):
            return {**value, "data": [x * factor if isinstance(x, float) else x
                                      for x in value["data"]]}
        return value
    if "float" in value:
        x = value["float"]
        return {"float": x * factor if isinstance(x, float) else x}
    return {k: _nudged(v, factor) for k, v in value.items()}


@pytest.fixture(scope="module")
def captured():
    """Every shipped expected value, computed here once (about 5 s)."""
    from dlnn_reference import shipped

    return json.loads(json.dumps(shipped.capture_all()))


def test_last_bit_differences_are_fresh_and_no_file_is_rewritten(captured, tmp_path):
    """Another CPU or BLAS: every float moved by a few float32 ulps (2**-21 relative, 8 ulps)."""
    from dlnn_reference import shipped

    written = _expected.write_shipped(captured, tmp_path)
    before = {p.name: p.read_bytes() for p in written}
    other_machine = {m: {k: _nudged(v, 1 + 2**-21) for k, v in t.items()}
                     for m, t in captured.items()}
    assert other_machine != captured  # the bytes do differ
    assert shipped.stale(tmp_path, other_machine) == []
    assert shipped.write(tmp_path, other_machine) == []  # `course.py expected`: git status clean
    assert {p.name: p.read_bytes() for p in tmp_path.glob("*.json")} == before


def test_a_real_change_is_stale_and_only_its_file_is_rewritten(captured, tmp_path):
    from dlnn_reference import shipped

    _expected.write_shipped(captured, tmp_path)
    module = sorted(captured)[0]
    changed = {m: dict(t) for m, t in captured.items()}
    key = sorted(changed[module])[0]
    changed[module][key] = _nudged(changed[module][key], 1.001)  # a 0.1 % change
    why = shipped.compare(tmp_path, changed)
    assert list(why) == [f"{module}.json"] and "shipped" in why[f"{module}.json"]
    assert [p.name for p in shipped.write(tmp_path, changed)] == [f"{module}.json"]
    assert shipped.stale(tmp_path, changed) == []
    # A setting that is new, one that is gone, a file nobody uses: stale too.
    extra = {m: dict(t) for m, t in captured.items()}
    extra[module]["[\"check_new\",{}]"] = {"float": 1.0}
    assert shipped.stale(tmp_path, extra) == [f"{module}.json"]
    (tmp_path / "unused.json").write_text("{}\n")
    assert "unused.json" in shipped.stale(tmp_path, changed)


def test_another_thread_count_gives_fresh_values():
    """The shipped files against a recomputation with one BLAS thread (another summation order)."""
    from dlnn_reference import shipped

    threads = torch.get_num_threads()
    torch.set_num_threads(1 if threads > 1 else 2)
    try:
        assert shipped.compare() == {}, "run: python scripts/course.py expected"
    finally:
        torch.set_num_threads(threads)
