"""Self-checks and autograder checks of the graded exercises (one module per tutorial).

Notebooks import everything from here (``from dlnn_helpers.checks import check_net_svd,
self_check``), never from a submodule.  Every check holds answers to one contract (the documented
type, dtype and shape; dependencies first), written in CONTRIBUTING.md and built on ``_contract``
(what an answer returns) and ``_diagnosis`` (compare, try the known mistakes, report the first bad
entry).
"""

from ._core import CheckFailure, NotImplementedYet, self_check
from ._expected import ReferenceUnavailable
from ._fallback import own_or_fallback
from ._shortcuts import ShortcutUsed
from .deep_linear import check_initializer, check_linear_regression, check_net_rsm, check_net_svd
from .deep_training import (
    check_batchnorm_mlp,
    check_mlp,
    check_residual_net,
    check_residual_sequence,
    check_tiny_rule,
)
from .initialisation import check_init_weights, check_supervise_init
from .mlp import check_linear_layer, check_relu_layer, check_squared_error
from .optimisation import (
    check_adam_optimizer,
    check_ema_update,
    check_gradient_descent,
    check_gradient_mean_rms,
    check_momentum_sgd,
    check_simple_gradient_descent,
)
from .relu_features import (
    check_feature_matrix,
    check_first_layer_gradients,
    check_principal_features,
    check_second_layer_gradients,
)

__all__ = [
    "CheckFailure",
    "NotImplementedYet",
    "self_check",
    "own_or_fallback",
    "ReferenceUnavailable",
    "ShortcutUsed",
    "check_initializer",
    "check_net_svd",
    "check_net_rsm",
    "check_linear_regression",
    "check_gradient_descent",
    "check_simple_gradient_descent",
    "check_gradient_mean_rms",
    "check_ema_update",
    "check_adam_optimizer",
    "check_momentum_sgd",
    "check_linear_layer",
    "check_relu_layer",
    "check_squared_error",
    "check_first_layer_gradients",
    "check_feature_matrix",
    "check_principal_features",
    "check_second_layer_gradients",
    "check_mlp",
    "check_batchnorm_mlp",
    "check_residual_net",
    "check_residual_sequence",
    "check_tiny_rule",
    "check_init_weights",
    "check_supervise_init",
]
