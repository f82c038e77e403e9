"""Every claim of tutorial 1's text about a result, asserted against the same seeded computation.

Each test names the cell it guards: it first asserts that the claim's wording is in that cell of the
solution notebook (so that text and test cannot drift apart), then asserts the claim.  The runs are
recomputed with ``dlnn_helpers`` exactly as the notebook makes them: the data from
``generate_hsd(random_state=SEED)`` and every network's initial weights from a generator seeded with
``SEED`` (which is what ``train_deep_linear(..., seed=SEED)`` does), and trained by the loop the
notebook writes out (``tests.t1_loop``), so the epochs are the notebook's.
One training run takes well under a second.  The tests marked ``slow`` read the printed numbers of
the executed notebook (the session's ``reference_run``).

Claims under test: see ``CLAIMS`` at the end (a test counts them).
"""

from __future__ import annotations

import math
import re
from functools import cache

import nbformat
import numpy as np
import pytest
import torch

import dlnn_helpers as dlnn
import dlnn_reference.deep_linear as reference
from courselayout import solution_path
from dlnn_helpers.checks import (
    CheckFailure,
    ShortcutUsed,
    check_initializer,
    check_linear_regression,
)

from ..t1_loop import deep_run, notebook_train
from .claims_tools import cell_outputs, cell_source

T1 = "T1_DeepLinearNetworks"
SEED = 2021
ANIMALS = np.arange(8) < 4  # Goldfish, Tuna, Robin, Canary | Rose, Daisy, Pine, Oak
PAIRS = np.arange(8) // 2  # fish, birds, flowers, trees


def _in(cell_id: str, *phrases: str) -> str:
    """The cell's source, after asserting that each phrase of the claim is in it (whitespace-folded)."""
    source = cell_source(T1, cell_id)
    folded = " ".join(source.split())
    for phrase in phrases:
        assert " ".join(phrase.split()) in folded, f"cell {cell_id} no longer says {phrase!r}"
    return source


@cache
def _data() -> tuple[np.ndarray, np.ndarray]:
    return dlnn.generate_hsd(random_state=SEED)


def _tensors(features: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    labels, tree_features = _data()
    features = tree_features if features is None else features
    return torch.tensor(labels, dtype=torch.float32), torch.tensor(features, dtype=torch.float32)


@cache
def _deep_run() -> dlnn.TrainingRecord:
    """Sections 2 and 3 and the RSM widget: η = 100, γ = 1e-12, 250 epochs, 30 hidden units."""
    return deep_run(*_tensors(), lr=100.0, gamma=1e-12, n_epochs=250, seed=SEED)


@cache
def _shark_run() -> dlnn.TrainingRecord:
    labels, features = _data()
    shark = dlnn.add_feature(features, [-1, 1, 1, 1, -1, -1, -1, -1])
    return deep_run(*_tensors(shark), seed=SEED, illusory_i=0)


def _half_learned(record: dlnn.TrainingRecord) -> np.ndarray:
    """The epoch at which each singular value first reaches half of its final value (as printed)."""
    return (record.modes >= record.modes[-1] / 2).argmax(axis=0)


def _data_svd() -> tuple[np.ndarray, np.ndarray]:
    u, s, _ = np.linalg.svd(_data()[1], full_matrices=False)
    return u, s


def _contrast(group: np.ndarray) -> np.ndarray:
    """Unit vector +1 on ``group`` and -1 on the other items of the pair of groups it belongs to."""
    return group / np.linalg.norm(group)


def _in_span(vector: np.ndarray, basis: np.ndarray) -> float:
    """Fraction of the length of ``vector`` that lies in the span of the columns of ``basis``."""
    q, _ = np.linalg.qr(basis)
    return float(np.linalg.norm(q.T @ vector) / np.linalg.norm(vector))


# ----------------------------------------------------------------------------------------------
# Set-up and Section 0
# ----------------------------------------------------------------------------------------------


def test_setup_cell_has_no_unused_device_and_no_stray_value():
    source = _in("199ac41e", "dlnn.set_seed(SEED)")
    assert "DEVICE" not in source and "set_device" not in source
    assert source.rstrip().endswith("dlnn.set_seed(SEED)")
    assert dlnn.set_seed(SEED, verbose=False) is None  # so the cell shows no "Out: 2021"


def test_gamma_one_is_half_of_glorots_variance_and_sqrt2_is_glorot():
    _in(
        "9c7271c1",
        "With $\\gamma = 1$ the variance is $\\sigma^2 = 1/(n_{in} + n_{out})$, half of the "
        "$2/(n_{in} + n_{out})$ of Glorot initialisation (PyTorch's `xavier_normal_`, after Xavier "
        "Glorot), which $\\gamma = \\sqrt{2}$ gives.",
    )
    n_out, n_in = 400, 600
    model = torch.nn.Sequential(torch.nn.Linear(n_in, n_out, bias=False))
    generator = torch.Generator().manual_seed(0)
    reference.initializer_(model, 1.0, generator=generator)
    var_one = model[0].weight.var().item()
    reference.initializer_(model, math.sqrt(2.0), generator=generator)
    var_sqrt2 = model[0].weight.var().item()
    torch.manual_seed(0)
    glorot = torch.nn.init.xavier_normal_(torch.empty(n_out, n_in)).var().item()
    assert var_one == pytest.approx(1 / (n_in + n_out), rel=0.02)
    assert glorot == pytest.approx(2 / (n_in + n_out), rel=0.02)
    assert var_one == pytest.approx(glorot / 2, rel=0.03)
    assert var_sqrt2 == pytest.approx(glorot, rel=0.03)


# ----------------------------------------------------------------------------------------------
# Section 1: the data
# ----------------------------------------------------------------------------------------------


def test_siblings_agree_on_most_features_items_across_the_root_much_less():
    _in(
        "343c537f",
        "at every node it flips sign with probability 0.15",
        "Two items whose paths split late (Goldfish and Tuna) therefore agree on most features, while "
        "items on opposite sides of the root (Tuna and Oak) agree much less often. We sample 10,000 "
        "such features.",
    )
    labels, features = _data()
    assert features.shape == (8, 10_000) and labels.shape == (8, 8)
    goldfish, tuna, oak = 0, 1, 7
    agree = lambda a, b: float(np.mean(features[a] == features[b]))  # noqa: E731
    assert agree(goldfish, tuna) > 0.7  # most features
    assert agree(tuna, oak) < 0.6 < agree(goldfish, tuna) - 0.1


def test_the_same_seed_gives_the_same_data():
    _in("0403ddb1", "It takes a `random_state`, so the same seed always gives the same data.")
    again = dlnn.generate_hsd(random_state=SEED)
    assert np.array_equal(again[1], _data()[1])
    assert not np.array_equal(dlnn.generate_hsd(random_state=SEED + 1)[1], _data()[1])


def test_the_tuna_is_marked_warm_blooded_and_the_text_says_so():
    _in("0403ddb1", "the Tuna is marked warm-blooded. Most fish are cold-blooded")
    readable = dlnn.readable_features()
    column = dlnn.READABLE_FEATURE_NAMES.index("is_warmblooded")
    warm = {name for name, value in zip(dlnn.ITEM_NAMES, readable[:, column], strict=True) if value > 0}
    assert warm == {"Tuna", "Robin", "Canary"}


def test_correlations_follow_the_tree():
    _in(
        "d1904607",
        "about 0.5 between siblings, 0.25 between cousins and 0.1 across the root",
        "$(1 - 2 \\cdot 0.15)^{2} = 0.49$, $0.7^{4} \\approx 0.24$ and $0.7^{6} \\approx 0.12$",
    )
    corr = np.corrcoef(_data()[1])
    off = ~np.eye(8, dtype=bool)
    same_side = ANIMALS[:, None] == ANIMALS[None, :]
    siblings = (PAIRS[:, None] == PAIRS[None, :]) & off
    cousins = same_side & ~siblings & off
    across = ~same_side
    for mask, said, expected in [(siblings, 0.5, 0.7**2), (cousins, 0.25, 0.7**4), (across, 0.1, 0.7**6)]:
        assert abs(corr[mask].mean() - said) < 0.03
        assert abs(corr[mask].mean() - expected) < 0.03  # "close to the expected values"
        assert np.all(np.abs(corr[mask] - said) < 0.04)  # every printed entry rounds near it


# ----------------------------------------------------------------------------------------------
# Section 2: the loss curves
# ----------------------------------------------------------------------------------------------


def _drops(losses: np.ndarray, threshold: float = 0.02) -> list[int]:
    """Epochs at which the loss falls fastest, one per drop (runs of steps larger than threshold)."""
    steps = -np.diff(losses)
    fast = steps > threshold * steps.max()
    starts = np.flatnonzero(fast[1:] & ~fast[:-1]) + 1
    ends = np.flatnonzero(fast[:-1] & ~fast[1:]) + 1
    if fast[0]:
        starts = np.concatenate([[0], starts])
    return [int(s + np.argmax(steps[s:e])) for s, e in zip(starts, ends, strict=True)]


def _solution_initializer():
    """The solution notebook's ``ex_initializer_``, defined from its cell."""
    namespace = {"math": math, "nn": torch.nn, "torch": torch}
    exec(cell_source(T1, "57389af8"), namespace)  # noqa: S102 - the course's own solution cell
    return namespace["ex_initializer_"]


def test_every_training_run_starts_from_seeded_weights():
    _in("c5e93a10", "The initial weights are drawn right after seeding torch's generator with `SEED`",
        "every run below starts from the same weights")
    calls = 0
    for cell in nbformat.read(solution_path(T1), as_version=4).cells:
        lines = cell.source.splitlines()
        for i, line in enumerate(lines):
            if cell.cell_type == "code" and line.startswith("initializer_("):
                assert lines[i - 1] == "torch.manual_seed(SEED)", cell.id
                calls += 1
    assert calls == 6
    # the solution's initialiser after torch.manual_seed(SEED) draws what train_deep_linear draws
    x, y = _tensors()
    model = dlnn.LNNet(8, 30, y.shape[1])
    torch.manual_seed(SEED)
    _solution_initializer()(model, 1e-12)
    initial = [weight.detach().clone() for weight in model.parameters()]
    record = notebook_train()(model, x, y, n_epochs=30, lr=100.0)  # the same weights: the same start
    assert np.array_equal(record.losses, _deep_run().losses[:30])
    again = deep_run(*_tensors(), seed=SEED)
    assert np.array_equal(again.losses, _deep_run().losses)
    # the widgets draw the same initial weights: the same initialiser right after seeding with SEED
    seen = []

    def first_weights(model, inputs, targets, **settings):
        seen.extend(weight.detach().clone() for weight in model.parameters())
        return dlnn.TrainingRecord.empty(1, 8, 8)

    torch.manual_seed(0)
    dlnn.train_deep_linear(x, y, train=first_weights, initializer=_solution_initializer(), seed=SEED)
    assert len(seen) == 2 and all(torch.equal(a, b) for a, b in zip(seen, initial, strict=True))


def test_until_the_exercises_pass_the_notebook_uses_stand_ins_that_are_not_answers():
    _in("c5e93a10", "The weights are initialised by your `ex_initializer_` once it passes its self-check "
        "(until then by PyTorch's default initialisation scaled by $\\gamma$, a stand-in).")
    _in("80e8108d", "own_or_fallback(ex_initializer_, check_initializer, dlnn.default_init_")
    model = torch.nn.Linear(50, 20, bias=False)
    torch.manual_seed(SEED)
    dlnn.default_init_(model, 3.0)
    torch.manual_seed(SEED)
    default = torch.nn.Linear(50, 20, bias=False).weight.detach() * 3.0  # PyTorch's own, scaled
    assert torch.allclose(model.weight.detach(), default)
    with pytest.raises(CheckFailure):
        check_initializer(dlnn.default_init_)
    _in("8157eab4", "a least-squares solver (`np.linalg.lstsq`) or the pseudo-inverse (`np.linalg.pinv`, "
        "which solves the same least-squares problem) would do the whole exercise, so the check refuses "
        "both.")
    with pytest.raises(ShortcutUsed, match="uses numpy.linalg.pinv: the exercise is to solve the normal"):
        check_linear_regression(lambda X, Y: Y @ np.linalg.pinv(X))
    _in("ad830965", "your `linear_regression`; until it passes its self-check, NumPy's least-squares "
        "solver `np.linalg.lstsq`")
    source = _in("bef9d569", "np.linalg.lstsq(X.T, Y.T, rcond=None)[0].T", 'instead="np.linalg.lstsq"')
    namespace = {"np": np}
    exec(source[: source.index("\n\n\nregression")], namespace)  # noqa: S102 - the stand-in only
    stand_in = namespace["lstsq_regression"]
    with pytest.raises(ShortcutUsed, match="uses numpy.linalg.lstsq"):
        check_linear_regression(stand_in)
    labels, features = _data()
    assert np.allclose(stand_in(labels.T, features.T), reference.linear_regression(labels.T, features.T))


def _stand_in(cell_id: str, name: str):
    """The stand-in ``name`` as the cell defines it (its ``def`` block only)."""
    source = cell_source(T1, cell_id)
    start = source.index(f"def {name}(")
    namespace = {"torch": torch}
    exec(source[start:source.index("\n\n\n", start)], namespace)  # noqa: S102
    return namespace[name]


def test_the_figures_use_the_students_svd_and_rsm_or_stand_ins_that_the_checks_refuse():
    from dlnn_helpers.checks import check_net_rsm, check_net_svd

    _in("e2665984", "now giving the loop your `ex_net_svd`", "Until your `ex_net_svd` passes its "
        "self-check, a stand-in records them: `torch.linalg.svdvals` of the weights multiplied by "
        "`torch.linalg.multi_dot` (it computes only $S$, which is all the loop keeps).")
    _in("ad04103e", "own_or_fallback(ex_net_svd, check_net_svd, singular_values_only",
        'instead="torch.linalg.svdvals of torch.linalg.multi_dot (S only)"', "svd=net_svd")
    _in("c7d765b0", "Refused: `torch.linalg.multi_dot`, `torch.chain_matmul` and `np.linalg.multi_dot`")
    _in("33ad7220", "Refused: `torch.inner`")
    _in("0af9ff69", 'own_or_fallback(ex_net_rsm, check_net_rsm, lambda h: torch.inner(h, h)',
        'instead="torch.inner(h, h)"')
    for cell in ("6a397f00", "e3a44753"):
        _in(cell, "svd=net_svd")
    singular_values_only = _stand_in("ad04103e", "singular_values_only")
    torch.manual_seed(SEED)
    model = dlnn.LNNet(8, 30, 50)
    u, s, v = singular_values_only(model, 8)
    assert u is None and v is None
    assert torch.allclose(s, reference.net_svd(model, 8)[1], rtol=1e-5, atol=1e-7)
    with pytest.raises(ShortcutUsed, match="ex_net_svd uses torch.linalg.multi_dot"):
        check_net_svd(lambda m, d: (lambda w: tuple(
            (lambda U, S, Vh: (U, S, Vh.mT))(*torch.linalg.svd(torch.linalg.multi_dot(w[::-1]),
                                                               full_matrices=False))))(
            [p.detach() for p in m.parameters()]))
    h = torch.randn(8, 30, generator=torch.Generator().manual_seed(SEED))
    assert torch.allclose(torch.inner(h, h), reference.net_rsm(h))
    with pytest.raises(ShortcutUsed, match="ex_net_rsm uses torch.inner"):
        check_net_rsm(lambda h: torch.inner(h, h))


def test_deep_loss_sits_on_plateaus_with_four_drops():
    _in("cc515ef7", "it sits on a plateau, drops, settles on a lower plateau, drops again — four drops in "
        "250 epochs")
    losses = _deep_run().losses
    drops = _drops(losses)
    assert len(drops) == 4, drops
    for before, after in zip(drops[:-1], drops[1:], strict=True):
        # between two drops a plateau (3 epochs over which the loss moves by less than 0.5 %) ...
        flat = [e for e in range(before, after - 3) if abs(losses[e + 3] - losses[e]) < 0.005 * losses[e]]
        assert flat, (before, after)
        assert losses[after + 5] < losses[flat[-1]] - 0.1 * losses[0]  # ... then a real drop
    assert losses[: drops[0] - 10].max() - losses[: drops[0] - 10].min() < 0.01  # starts flat


def test_shallow_loss_falls_smoothly_by_the_same_factor_every_epoch():
    _in("cc515ef7", "train a network **without** a hidden layer", "from the same tiny initialisation",
        "$\\eta = 1000$, to learn within the same 250 epochs")
    _in("0d6de5b7", "Why does the loss of the network without a hidden layer fall smoothly, with no "
        "plateaus, although it starts from the same tiny weights?")
    _in("57e10ad7", "with one-hot inputs it even shrinks by the same factor at every epoch")
    source = _in("bf44161a", "dlnn.LRNet(dim_input, dim_output)", "lr=1000.0")
    assert "n_epochs=n_epochs" in source
    x, y = _tensors()
    model = dlnn.LRNet(8, y.shape[1])
    reference.initializer_(model, 1e-12, generator=torch.Generator().manual_seed(SEED))
    losses = dlnn.train_lrnet(model, x, y, n_epochs=250, lr=1000.0)
    ratios = losses[1:] / losses[:-1]
    assert np.all(ratios < 1)  # falls at every epoch: no plateau
    assert ratios.max() - ratios.min() < 1e-3  # by the same factor
    assert losses[-1] < 1e-4 * losses[0]  # learned within the 250 epochs
    deep_ratios = _deep_run().losses[1:] / _deep_run().losses[:-1]
    assert deep_ratios.max() - deep_ratios.min() > 0.5  # unlike the deep network


# ----------------------------------------------------------------------------------------------
# Section 3: the modes
# ----------------------------------------------------------------------------------------------


def test_final_singular_values_are_the_datas():
    _in("96192f3f", "The final values are the singular values of the data",
        "about 155, 126, 100, 99 and four close to 71")
    _, s = _data_svd()
    final = _deep_run().modes[-1]
    assert np.allclose(final, s, rtol=1e-3)
    assert np.allclose(s[:4], [155, 126, 100, 99], atol=0.8)
    assert np.all(np.abs(s[4:] - 71) < 1.0)


def test_modes_rise_in_order_of_size_and_each_drop_is_a_rise():
    _in("96192f3f", "Each drop of the loss coincides with one or more singular values rising from zero "
        "to their final value, and they rise in order of size.")
    _in("690faff7", "the mode with the largest singular value in the data first, then the next")
    record = _deep_run()
    half = _half_learned(record)
    assert half[0] < half[1] < min(half[2:4]) and max(half[2:4]) < min(half[4:])
    assert record.modes[0].max() < 1e-6 * record.modes[-1].min()  # from zero
    for drop in _drops(record.losses):
        assert np.min(np.abs(half - drop)) <= 3, (drop, half)
    for mode in half:
        assert any(abs(mode - drop) <= 5 for drop in _drops(record.losses))


def test_what_each_mode_separates():
    _in(
        "96192f3f",
        "The first and largest mode is shared by all items — what all eight have in common, roughly the "
        "average of each feature over the items; the second (about 126) splits the animals from the "
        "plants; the next two, nearly equal and learned together, separate fish from birds and flowers "
        "from trees; the four smallest and latest modes tell the siblings apart.",
    )
    _in("1750f6f8", "the first mode is shared by all items")
    u, s = _data_svd()
    first = u[:, 0] * np.sign(u[0, 0])
    assert np.all(np.abs(first - 1 / math.sqrt(8)) < 0.1 / math.sqrt(8))  # shared by all, ~uniform
    second = u[:, 1] * np.sign(u[0, 1])
    assert np.all(second[ANIMALS] > 0.3) and np.all(second[~ANIMALS] < -0.3)
    fish_birds = _contrast(np.array([1, 1, -1, -1, 0, 0, 0, 0.0]))
    flowers_trees = _contrast(np.array([0, 0, 0, 0, 1, 1, -1, -1.0]))
    assert _in_span(fish_birds, u[:, 2:4]) > 0.97 and _in_span(flowers_trees, u[:, 2:4]) > 0.97
    assert abs(s[2] - s[3]) < 0.02 * s[2]  # nearly equal
    half = _half_learned(_deep_run())
    assert abs(int(half[2]) - int(half[3])) <= 5  # learned together
    for pair in range(4):
        sibling = np.zeros(8)
        sibling[2 * pair], sibling[2 * pair + 1] = 1, -1
        assert _in_span(sibling, u[:, 4:]) > 0.97


def test_sample_answer_squared_singular_values_and_learning_time():
    _in("42cda474", "the squared singular values add up to the total squared correlation",
        "the time to learn a mode scales as $1/s$")
    _, s = _data_svd()
    assert np.sum(s**2) == pytest.approx(np.sum(_data()[1] ** 2), rel=1e-9)
    times = _half_learned(_deep_run()) * s  # constant if the time scales as 1/s
    assert times.max() / times.min() < 1.15


# ----------------------------------------------------------------------------------------------
# Section 4: the RSM demo (the widget's own run)
# ----------------------------------------------------------------------------------------------


def _rsm_stats(epoch: int) -> dict[str, float]:
    """The RSM at ``epoch`` on the widget's colour scale (divided by its largest value in the run)."""
    rsms = _deep_run().rsms
    rsm = rsms[epoch] / np.abs(rsms).max()
    off = ~np.eye(8, dtype=bool)
    same_side = ANIMALS[:, None] == ANIMALS[None, :]
    siblings = (PAIRS[:, None] == PAIRS[None, :]) & off
    return {
        "max": float(np.abs(rsm).max()),
        "items": float(np.diag(rsm).mean()),
        "siblings": float(rsm[siblings].mean()),
        "cousins": float(rsm[same_side & ~siblings & off].mean()),
        "within": float(rsm[same_side & off].mean()),
        "across": float(rsm[~same_side].mean()),
    }


def test_the_widget_trains_the_run_of_section_3():
    _in("aeb9978f", "The widget trains a network with the loop of Section 2 (the same data, $\\eta$ and "
        "$\\gamma$, and the same initial weights as above: it seeds torch's generator with `SEED` and "
        "calls the same initialiser)", "(the default, epoch 130, shows this stage)")
    _in("0af9ff69", "train=functools.partial(train, svd=net_svd, rsm=net_rsm)",
        "initializer=initializer_, seed=SEED")
    _in("3b484a59", "train=train, initializer=initializer_, seed=SEED")
    import inspect

    from dlnn_helpers import widgets

    assert inspect.signature(dlnn.rsm_widget).parameters["default_epoch"].default == 130
    assert (widgets.DEFAULT_LR, widgets.DEFAULT_GAMMA, widgets.DEFAULT_EPOCHS) == (100.0, 1e-12, 250)
    assert inspect.signature(dlnn.train_deep_linear).parameters["seed"].default == SEED


def test_rsm_is_blank_then_uniform_then_splits_plants_from_animals():
    _in("aeb9978f", "Until about epoch 85 the RSM is blank: the hidden layer is still almost zero.",
        "With the first drop of the loss (epochs 90–100) it fills in uniformly — every item is as "
        "similar to every other, because the first mode is shared by all items.",
        "Only the second drop (epochs 105–120) separates the plants from the animals")
    assert all(_rsm_stats(e)["max"] < 0.01 for e in range(10, 86))  # blank
    drops = _drops(_deep_run().losses)
    assert 90 <= drops[0] <= 100 and 105 <= drops[1] <= 120
    assert _rsm_stats(100)["max"] > 0.15  # filled in by epoch 100 ...
    for epoch in range(90, 105):  # ... uniformly: no split yet
        stats = _rsm_stats(epoch)
        assert stats["within"] - stats["across"] < 0.01 and stats["max"] - stats["across"] < 0.02
    early, late = _rsm_stats(105), _rsm_stats(120)
    assert early["within"] - early["across"] < 0.01
    assert late["within"] - late["across"] > 0.3  # plants and animals apart by epoch 120


def test_default_epoch_shows_only_the_animal_plant_split():
    _in("aeb9978f", "(the default, epoch 130, shows this stage)")
    stats = _rsm_stats(130)
    assert stats["within"] - stats["across"] > 0.3
    assert stats["siblings"] - stats["cousins"] < 0.02  # fish and birds not yet apart


def test_rsm_then_splits_the_smaller_groups_and_finally_every_item():
    _in("aeb9978f", "the third (epochs 130–145) separates the fish from the birds and the flowers from "
        "the trees, and the last (epochs 170–195) tells every item apart.")
    drops = _drops(_deep_run().losses)
    assert 130 <= drops[2] <= 145 and 170 <= drops[3] <= 195
    before, after = _rsm_stats(128), _rsm_stats(145)
    assert before["siblings"] - before["cousins"] < 0.01
    assert after["siblings"] - after["cousins"] > 0.4
    before, after = _rsm_stats(170), _rsm_stats(195)
    assert before["items"] - before["siblings"] < 0.03
    assert after["items"] - after["siblings"] > 0.6


# ----------------------------------------------------------------------------------------------
# Section 5: the illusory correlation
# ----------------------------------------------------------------------------------------------


def test_has_bones_is_the_feature_the_text_describes():
    _in("ab7b7d28", "*has bones*: the Shark and the plants do not (-1), the Tuna and the birds do (+1)")
    source = _in("60a277a9", "has_bones = [-1, 1, 1, 1, -1, -1, -1, -1]",
                 'item_names = ["Shark", "Tuna", "Robin", "Canary", "Rose", "Daisy", "Pine", "Oak"]')
    assert "illusion_idx = 0" in source


def test_the_shark_inherits_its_groups_averages_mode_by_mode():
    _in(
        "1750f6f8",
        "yet for a long stretch of training it predicts exactly that",
        "the prediction moves to about the average of *has bones* over all eight items, "
        "$(3 - 5)/8 = -0.25$",
        "the Shark now gets the average of the four animals, $+0.5$",
        "the fish–bird mode: about the average of Shark and Tuna, $0$",
        "the prediction falls to the truth, $-1$",
    )
    record = _shark_run()
    half = _half_learned(record)
    stages = [(half[0] + half[1]) // 2, (half[1] + half[2]) // 2, (half[3] + half[4]) // 2, -1]
    predictions = record.illusions[stages]
    assert predictions == pytest.approx([-0.25, 0.5, 0.0, -1.0], abs=0.06), predictions
    assert (record.illusions > 0.4).sum() >= 15  # a long stretch of "sharks have bones"
    assert record.illusions[: half[0] - 10].max() < 0.01  # nothing before the first mode


def test_exercise_example_feature_is_what_the_text_says():
    _in("d397dc41", "a Parrot replaces the Canary, and we add *cannot speak*, true for every item but the "
        "Parrot")
    source = _in("e3a44753", 'item_names = ["Goldfish", "Tuna", "Robin", "Parrot"',
                 "new_feature = [1, 1, 1, -1, 1, 1, 1, 1]", "illusion_idx = 3")
    assert 'its_label = "cannot_speak"' in source


# ----------------------------------------------------------------------------------------------
# Bonus
# ----------------------------------------------------------------------------------------------


def test_three_roads_lead_to_the_same_map():
    _in("d3cc64b9", "All three arrive at the same map")
    _in("ad830965", "trained by gradient descent ($\\eta = 1000$)")
    _in("bef9d569", "n_epochs=250, lr=1000.0", "atol=1e-2")
    labels, features = _data()
    x, y = _tensors()
    analytical = reference.linear_regression(labels.T, features.T)
    torch.manual_seed(SEED)
    shallow = dlnn.LRNet(8, y.shape[1])
    dlnn.train_lrnet(shallow, x, y, n_epochs=250, lr=1000.0)
    deep = dlnn.LNNet(8, 30, y.shape[1])
    reference.initializer_(deep, 1e-12, generator=torch.Generator().manual_seed(SEED))
    notebook_train()(deep, x, y, n_epochs=250, lr=100.0)
    assert np.allclose(analytical, shallow.in_out.weight.detach().numpy(), atol=1e-2)
    assert np.allclose(analytical, reference.total_weight(deep, 8).numpy(), atol=1e-2)
    _in("bef9d569", "deep_model.hid_out.weight @ deep_model.in_hid.weight")  # W_tot = W_2 W_1
    assert torch.allclose(deep.hid_out.weight @ deep.in_hid.weight, reference.total_weight(deep, 8))


# ----------------------------------------------------------------------------------------------
# Self-check cells
# ----------------------------------------------------------------------------------------------


def test_self_check_cells_are_worded_one_way_and_use_the_public_checks():
    cells = nbformat.read(solution_path(T1), as_version=4).cells
    self_checks = [c for c in cells if c.cell_type == "code" and "self_check(" in c.source
                   and "import" not in c.source]
    assert len(self_checks) == 4
    for cell in self_checks:
        first, second = cell.source.splitlines()
        assert first == "# Self-check: run this cell after completing the exercise."
        assert re.fullmatch(r"self_check\(check_\w+, \w+\)", second), second
    imports = _in("199ac41e", "from dlnn_helpers.checks import (")
    assert "_core" not in imports and "self_check," in imports
    assert not any("checks._core" in c.source for c in cells)


# ----------------------------------------------------------------------------------------------
# The printed numbers of the executed notebook (slow: the session's reference run)
# ----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_printed_numbers_of_the_reference_run(reference_run):
    nb = reference_run(T1)
    setup = [o for c in nb.cells if c.get("id") == "199ac41e" for o in c.outputs]
    assert not [o for o in setup if o.output_type == "execute_result"]  # no stray "Out: 2021"
    assert cell_outputs(nb, "199ac41e").strip() == "Random seed 2021 has been set."
    printed = cell_outputs(nb, "52d8b786")
    corr = np.corrcoef(_data()[1]).round(2)
    assert str(corr) in printed  # the printed matrix is the one the test checks
    printed = cell_outputs(nb, "ad04103e")
    record = _deep_run()
    assert f"final singular values:         {record.modes[-1].round(1)}" in printed
    assert f"epoch each reaches half of it: {_half_learned(record)}" in printed
    printed = cell_outputs(nb, "6a397f00")
    shark = _shark_run()
    assert f"highest prediction: {shark.illusions.max():+.2f} at epoch {shark.illusions.argmax()}" in printed
    assert "highest prediction: +0.50" in printed and "final prediction:   -1.00" in printed
    assert "all agree within 1e-2: True" in cell_outputs(nb, "bef9d569")


CLAIMS = {
    "set-up: no unused DEVICE, no stray Out": test_setup_cell_has_no_unused_device_and_no_stray_value,
    "γ = 1 is half of Glorot's variance, γ = √2 is Glorot": (
        test_gamma_one_is_half_of_glorots_variance_and_sqrt2_is_glorot),
    "siblings agree on most features, across the root much less": (
        test_siblings_agree_on_most_features_items_across_the_root_much_less),
    "the same seed gives the same data": test_the_same_seed_gives_the_same_data,
    "the Tuna is marked warm-blooded": test_the_tuna_is_marked_warm_blooded_and_the_text_says_so,
    "correlations 0.5 / 0.25 / 0.1, close to 0.49 / 0.24 / 0.12": test_correlations_follow_the_tree,
    "every run starts from the same seeded weights": test_every_training_run_starts_from_seeded_weights,
    "stand-ins until the exercises pass: PyTorch's init scaled by γ, np.linalg.lstsq (refused)": (
        test_until_the_exercises_pass_the_notebook_uses_stand_ins_that_are_not_answers),
    "the figures use ex_net_svd / ex_net_rsm, else refused stand-ins (multi_dot, torch.inner)": (
        test_the_figures_use_the_students_svd_and_rsm_or_stand_ins_that_the_checks_refuse),
    "deep loss: plateaus and four drops": test_deep_loss_sits_on_plateaus_with_four_drops,
    "shallow loss: smooth, same factor every epoch": (
        test_shallow_loss_falls_smoothly_by_the_same_factor_every_epoch),
    "final singular values ≈ 155, 126, 100, 99, 4 × 71, the data's": test_final_singular_values_are_the_datas,
    "modes rise in order of size, each drop a rise": test_modes_rise_in_order_of_size_and_each_drop_is_a_rise,
    "what each mode separates (shared, animals/plants, fish/birds + flowers/trees, siblings)": (
        test_what_each_mode_separates),
    "Σ s² is the total squared correlation; learning time ∝ 1/s": (
        test_sample_answer_squared_singular_values_and_learning_time),
    "the widget trains the run of Section 3; default epoch 130": test_the_widget_trains_the_run_of_section_3,
    "RSM blank until 85, uniform 90–100, plants/animals 105–120": (
        test_rsm_is_blank_then_uniform_then_splits_plants_from_animals),
    "epoch 130 shows only the animal/plant split": test_default_epoch_shows_only_the_animal_plant_split,
    "fish/birds + flowers/trees 130–145, every item 170–195": (
        test_rsm_then_splits_the_smaller_groups_and_finally_every_item),
    "has bones: Shark and plants -1, Tuna and birds +1": test_has_bones_is_the_feature_the_text_describes,
    "the Shark's prediction: -0.25, +0.5, 0, -1, a long stretch of +0.5": (
        test_the_shark_inherits_its_groups_averages_mode_by_mode),
    "the exercise's example is the Parrot's cannot_speak": (
        test_exercise_example_feature_is_what_the_text_says),
    "analytical, shallow and deep agree within 1e-2": test_three_roads_lead_to_the_same_map,
    "self-check cells worded one way, public checks only": (
        test_self_check_cells_are_worded_one_way_and_use_the_public_checks),
    "printed numbers of the reference run": test_printed_numbers_of_the_reference_run,
}


def test_every_claims_test_is_counted():
    tests = {name for name, value in globals().items() if name.startswith("test_") and callable(value)}
    assert tests - {"test_every_claims_test_is_counted"} == {f.__name__ for f in CLAIMS.values()}
