"""dlnn_helpers: data, models, training loops, figures, widgets and checks of the dlnn-course.

Every tutorial notebook imports this package (``import dlnn_helpers as dlnn``) so that the notebooks
stay short and about the ideas.  Students install it: it holds no answer to a graded exercise (the
reference implementations live in the instructor's ``dlnn_reference``, which is never released), and
its checks compare with values shipped in ``checks/expected`` (see ``checks._expected``).
"""

from . import (
    checks,
    deep_training,
    deep_training_data,
    initialisation,
    mlp_activations,
    mlp_backprop,
    mlp_data,
    mlp_regression,
    relu_features,
)
from .course import in_colab
from .deep_linear_data import (
    ITEM_NAMES,
    READABLE_FEATURE_NAMES,
    add_feature,
    build_tree,
    generate_hsd,
    readable_features,
    sample_from_tree,
)
from .deep_linear_nets import (
    LNNet,
    LRNet,
    TrainingRecord,
    default_init_,
    train_lrnet,
)
from .deep_linear_plots import (
    plot_ills_sv_twin,
    plot_loss,
    plot_loss_sv,
    plot_loss_sv_rsm,
    plot_loss_sv_twin,
    plot_tree_data,
    plot_x_y_hier_data,
)
from .optimisation_surface import LossFunctionWithPlot, plot_ema
from .utils import set_device, set_seed
from .widgets import loss_widget, rsm_widget, train_deep_linear

__version__ = "0.1.0"

__all__ = [
    "checks",
    "deep_training",
    "deep_training_data",
    "initialisation",
    "mlp_activations",
    "mlp_backprop",
    "mlp_data",
    "mlp_regression",
    "relu_features",
    "in_colab",
    "ITEM_NAMES",
    "READABLE_FEATURE_NAMES",
    "add_feature",
    "build_tree",
    "generate_hsd",
    "readable_features",
    "sample_from_tree",
    "LNNet",
    "LRNet",
    "TrainingRecord",
    "default_init_",
    "train_lrnet",
    "plot_ills_sv_twin",
    "plot_loss",
    "plot_loss_sv",
    "plot_loss_sv_rsm",
    "plot_loss_sv_twin",
    "plot_tree_data",
    "plot_x_y_hier_data",
    "loss_widget",
    "rsm_widget",
    "train_deep_linear",
    "set_device",
    "set_seed",
    "LossFunctionWithPlot",
    "plot_ema",
]
