"""Hierarchically structured data from a branching diffusion process (tutorial 1).

A property starts at the root of a tree with a random sign and travels down to the leaves; at every
node it flips sign with a small probability.  Leaves that share a long path (Goldfish and Tuna) end up
with similar properties, leaves on different sides of the root (Tuna and Oak) with unrelated ones.
Sampling many such properties gives an item-by-feature matrix whose correlations follow the tree.
"""

from __future__ import annotations

import numpy as np

ITEM_NAMES: tuple[str, ...] = (
    "Goldfish", "Tuna", "Robin", "Canary", "Rose", "Daisy", "Pine", "Oak",
)
"""Names of the eight leaves, in the order of the rows of the data."""

READABLE_FEATURE_NAMES: tuple[str, ...] = (
    "can_grow", "is_mammal", "has_leaves", "can_move", "has_trunk",
    "can_fly", "can_swim", "has_stem", "is_warmblooded", "can_flower",
)
"""Names of the ten hand-made features used for the first picture of the data."""

# One column per item (ITEM_NAMES), one row per feature (READABLE_FEATURE_NAMES); 1 = yes, 0 = no.
_READABLE_FEATURES = np.array(
    [
        [1, 1, 1, 1, 1, 1, 1, 1],  # can_grow
        [0, 0, 0, 0, 0, 0, 0, 0],  # is_mammal
        [0, 0, 0, 0, 1, 1, 1, 1],  # has_leaves
        [1, 1, 1, 1, 0, 0, 0, 0],  # can_move
        [0, 0, 0, 0, 0, 0, 1, 1],  # has_trunk
        [0, 0, 1, 1, 0, 0, 0, 0],  # can_fly
        [1, 1, 0, 0, 0, 0, 0, 0],  # can_swim
        [0, 0, 0, 0, 1, 1, 0, 0],  # has_stem
        [0, 1, 1, 1, 0, 0, 0, 0],  # is_warmblooded (tunas keep their muscles warm; the text says so)
        [0, 0, 0, 0, 1, 1, 0, 1],  # can_flower
    ]
)


def readable_features() -> np.ndarray:
    """Return the ten hand-made features as a ±1 matrix.

    Returns
    -------
    features : np.ndarray of shape (8, 10)
        ``features[i, j]`` is +1 when item ``ITEM_NAMES[i]`` has property
        ``READABLE_FEATURE_NAMES[j]`` and -1 otherwise.
    """
    return np.where(_READABLE_FEATURES.T == 1, 1.0, -1.0)


def _check_random_state(random_state: int | np.random.Generator | None) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or isinstance(random_state, (int, np.integer)):
        return np.random.default_rng(random_state)
    raise TypeError(
        f"random_state must be None, an int or a numpy Generator, got {type(random_state).__name__}"
    )


MAX_NODES = 1_000_000
"""The largest tree :func:`build_tree` builds (a complete tree of 3 levels of 2 branches has 15)."""


def build_tree(n_levels: int, n_branches: int, probability: float) -> dict[str, np.ndarray]:
    """Describe a complete tree with the same flip probability at every node.

    Nodes are numbered breadth first: the root is 0, its children are 1 … ``n_branches``, and so on.

    Parameters
    ----------
    n_levels : int
        Number of levels below the root (3 gives 8 leaves with 2 branches).
    n_branches : int
        Number of children of every inner node.
    probability : float
        Probability, in [0, 1], that a property flips sign at a node.

    Returns
    -------
    tree : dict
        ``"level"``: int array of shape (n_nodes,), the depth of each node (root 0);
        ``"pflip"``: float array of shape (n_nodes,), the flip probability of each node;
        ``"parent"``: int array of shape (n_nodes,), the parent of each node, -1 for the root.
    """
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"probability must lie in [0, 1], got {probability}")
    if n_levels < 0 or n_branches < 1:
        raise ValueError("n_levels must be >= 0 and n_branches >= 1")
    too_big = (n_levels + 1 > MAX_NODES if n_branches == 1
               else n_levels >= 64 or (n_branches ** (n_levels + 1) - 1) // (n_branches - 1) > MAX_NODES)
    if too_big:
        raise ValueError(f"a tree of {n_levels} levels with {n_branches} branches has more than "
                         f"{MAX_NODES:,} nodes")
    level = np.concatenate([np.full(n_branches**depth, depth) for depth in range(n_levels + 1)])
    n_nodes = level.size
    parent = np.concatenate([[-1], (np.arange(1, n_nodes) - 1) // n_branches])
    return {
        "level": level.astype(int),
        "pflip": np.full(n_nodes, float(probability)),
        "parent": parent.astype(int),
    }


def _ancestor_matrix(tree: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Leaves of ``tree`` and a (n_leaves, n_nodes) 0/1 matrix marking each leaf's path to the root."""
    level = np.asarray(tree["level"])
    parent = np.asarray(tree["parent"])
    leaves = np.flatnonzero(level == level.max())
    on_path = np.zeros((leaves.size, level.size), dtype=np.int64)
    nodes = leaves.copy()
    rows = np.arange(leaves.size)
    for _ in range(int(level.max()) + 1):  # one step per level, vectorised over leaves
        on_path[rows, nodes] = 1
        nodes = np.where(nodes >= 0, parent[np.maximum(nodes, 0)], -1)
        keep = nodes >= 0
        rows, nodes = rows[keep], nodes[keep]
    return leaves, on_path


def sample_from_tree(
    tree: dict[str, np.ndarray],
    n: int,
    random_state: int | np.random.Generator | None = None,
) -> np.ndarray:
    """Sample ``n`` properties diffusing down ``tree``.

    Every node draws a sign, -1 with its flip probability; a leaf's value is the product of the signs
    on its path to the root.  The product is computed for all features and leaves at once as the
    parity of the number of flips on each path.

    Parameters
    ----------
    tree : dict
        As returned by :func:`build_tree`.
    n : int
        Number of features (properties) to sample.
    random_state : int, numpy Generator or None
        Seed or generator; the global NumPy state is never touched.

    Returns
    -------
    x : np.ndarray of shape (n, n_leaves)
        ±1 values of each feature at each leaf.
    """
    rng = _check_random_state(random_state)
    pflip = np.asarray(tree["pflip"], dtype=float)
    _, on_path = _ancestor_matrix(tree)
    flips = (rng.random((n, pflip.size)) < pflip).astype(np.int64)  # (n, n_nodes)
    parity = (flips @ on_path.T) % 2  # (n, n_leaves)
    return 1.0 - 2.0 * parity


def generate_hsd(
    n_features: int = 10_000,
    random_state: int | np.random.Generator | None = None,
    *,
    n_levels: int = 3,
    n_branches: int = 2,
    probability: float = 0.15,
) -> tuple[np.ndarray, np.ndarray]:
    """Generate the hierarchically structured data set of tutorial 1.

    The root flips with probability 0.5, so every feature is equally likely to be +1 or -1 overall.

    Parameters
    ----------
    n_features : int
        Number of sampled features (default 10,000).
    random_state : int, numpy Generator or None
        Seed or generator for reproducible data.
    n_levels, n_branches, probability : int, int, float
        Shape of the tree and flip probability of the non-root nodes.

    Returns
    -------
    labels : np.ndarray of shape (n_items, n_items)
        One-hot inputs, the identity matrix (n_items = n_branches ** n_levels, 8 by default).
    features : np.ndarray of shape (n_items, n_features)
        ±1 targets; row i holds the features of item i.
    """
    tree = build_tree(n_levels, n_branches, probability)
    tree["pflip"][0] = 0.5
    features = sample_from_tree(tree, n_features, random_state).T
    labels = np.eye(features.shape[0])
    return labels, features


def add_feature(existing_features: np.ndarray, new_feature) -> np.ndarray:
    """Append one feature (a column) to a feature matrix.

    Parameters
    ----------
    existing_features : np.ndarray of shape (n_items, n_features)
        The current targets; not modified.
    new_feature : sequence of float, length n_items
        Value of the new feature for each item (±1).

    Returns
    -------
    features : np.ndarray of shape (n_items, n_features + 1)
        ``existing_features`` with ``new_feature`` as its last column.
    """
    existing = np.asarray(existing_features, dtype=float)
    column = np.asarray(new_feature, dtype=float).reshape(-1)
    if existing.ndim != 2:
        raise ValueError(f"existing_features must be 2-D, got shape {existing.shape}")
    if column.size != existing.shape[0]:
        raise ValueError(
            f"new_feature has {column.size} values but there are {existing.shape[0]} items"
        )
    return np.hstack([existing, column[:, None]])
