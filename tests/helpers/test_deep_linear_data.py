"""Hierarchical data: the tree, the vectorised sampler and the data set follow the hierarchy."""

from __future__ import annotations

import numpy as np
import pytest

from dlnn_helpers.deep_linear_data import (
    ITEM_NAMES,
    READABLE_FEATURE_NAMES,
    add_feature,
    build_tree,
    generate_hsd,
    readable_features,
    sample_from_tree,
)


def test_build_tree_structure():
    tree = build_tree(3, 2, 0.15)
    assert tree["level"].tolist() == [0] + [1] * 2 + [2] * 4 + [3] * 8
    assert tree["parent"].tolist() == [-1, 0, 0, 1, 1, 2, 2] + [3, 3, 4, 4, 5, 5, 6, 6]
    assert np.all(tree["pflip"] == 0.15)
    ternary = build_tree(2, 3, 0.1)
    assert ternary["parent"].tolist() == [-1, 0, 0, 0] + [1, 1, 1, 2, 2, 2, 3, 3, 3]


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_build_tree_rejects_bad_probability(bad):
    with pytest.raises(ValueError, match="probability"):
        build_tree(3, 2, bad)


def test_sampling_without_flips_copies_the_root():
    tree = build_tree(3, 2, 0.0)
    tree["pflip"][0] = 0.5
    x = sample_from_tree(tree, 500, random_state=0)
    assert x.shape == (500, 8)
    assert np.all(x == x[:, :1])  # every leaf equals the root's sign
    assert 0.4 < (x[:, 0] == 1).mean() < 0.6


def test_sampling_one_flip_at_a_single_node_flips_its_subtree():
    tree = build_tree(2, 2, 0.0)
    tree["pflip"][1] = 1.0  # the left child always flips
    x = sample_from_tree(tree, 10, random_state=1)
    assert np.all(x == np.array([-1, -1, 1, 1]))


def test_feature_correlations_follow_the_hierarchy():
    _, features = generate_hsd(random_state=0)
    corr = np.corrcoef(features)
    siblings = [corr[0, 1], corr[2, 3], corr[4, 5], corr[6, 7]]
    cousins = [corr[0, 2], corr[1, 3], corr[4, 6], corr[5, 7]]
    across = [corr[0, 4], corr[1, 7], corr[3, 6]]
    p = 0.15
    # two leaves separated by 2k nodes agree unless an odd number of those nodes flip
    for values, k in ((siblings, 1), (cousins, 2), (across, 3)):
        assert np.allclose(values, (1 - 2 * p) ** (2 * k), atol=0.04)
    assert min(siblings) > max(cousins) > max(across)


def test_generate_hsd_is_reproducible_and_leaves_global_state_alone():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    labels, a = generate_hsd(random_state=7)
    _, b = generate_hsd(random_state=7)
    _, c = generate_hsd(random_state=8)
    assert np.array_equal(np.random.get_state()[1], before)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert labels.shape == (8, 8) and np.array_equal(labels, np.eye(8))
    assert a.shape == (8, 10_000) and set(np.unique(a)) == {-1.0, 1.0}
    assert abs(a.mean()) < 0.05  # the root flips with probability 0.5


def test_generate_hsd_accepts_a_generator_and_other_sizes():
    rng = np.random.default_rng(3)
    labels, features = generate_hsd(50, rng, n_levels=2, n_branches=3)
    assert labels.shape == (9, 9) and features.shape == (9, 50)
    with pytest.raises(TypeError, match="random_state"):
        generate_hsd(random_state="seed")


def test_add_feature_uses_its_argument_and_copies():
    existing = np.ones((8, 3))
    new = add_feature(existing, [-1, 1, 1, 1, -1, -1, -1, -1])
    assert new.shape == (8, 4)
    assert np.array_equal(new[:, :3], existing)
    assert new[:, -1].tolist() == [-1, 1, 1, 1, -1, -1, -1, -1]
    other = add_feature(np.zeros((8, 2)), [1] * 8)  # a different matrix gives a different result
    assert np.array_equal(other[:, :2], np.zeros((8, 2)))
    assert existing.shape == (8, 3)  # input untouched
    with pytest.raises(ValueError, match="8 items"):
        add_feature(existing, [1, 1])


def test_readable_features_match_their_names():
    features = readable_features()
    assert features.shape == (len(ITEM_NAMES), len(READABLE_FEATURE_NAMES))
    col = dict(zip(READABLE_FEATURE_NAMES, features.T, strict=True))
    row = {name: i for i, name in enumerate(ITEM_NAMES)}
    assert col["can_swim"][row["Tuna"]] == 1 and col["can_swim"][row["Robin"]] == -1
    assert col["has_trunk"][row["Oak"]] == 1 and col["has_trunk"][row["Rose"]] == -1
    assert np.all(col["is_mammal"] == -1)


@pytest.mark.parametrize(("n_levels", "n_branches"), [(10**9, 1), (19, 2), (10**6, 3)])
def test_a_tree_too_big_to_build_is_refused_at_once(n_levels, n_branches):
    # (any two numbers given as levels and branches must not keep the machine busy for minutes)
    with pytest.raises(ValueError, match="more than 1,000,000 nodes"):
        build_tree(n_levels, n_branches, 0.1)
    assert build_tree(18, 2, 0.1)["level"].size == 2**19 - 1  # the largest under the limit
