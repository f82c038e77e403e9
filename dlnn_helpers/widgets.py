"""Interactive widgets of tutorial 1.

Each widget trains a fresh deep linear network for the chosen settings and redraws a figure.  When
:func:`dlnn_helpers.course.static_figures` is true (the site build sets ``DLNN_STATIC_WIDGETS=1``) a
widget draws its figure once, for its default settings, so that a page without widget JavaScript
still shows it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .course import static_figures
from .deep_linear_plots import plot_loss, plot_loss_sv_rsm
from .linear_nets import LNNet, TrainingRecord, initializer_, train
from .tree_data import ITEM_NAMES

DEFAULT_LR = 100.0
DEFAULT_GAMMA = 1e-12
DEFAULT_EPOCHS = 250
DEFAULT_HIDDEN = 30


def train_deep_linear(
    inputs: torch.Tensor,
    targets: torch.Tensor,
    lr: float = DEFAULT_LR,
    gamma: float = DEFAULT_GAMMA,
    n_epochs: int = DEFAULT_EPOCHS,
    hid_dim: int = DEFAULT_HIDDEN,
    seed: int = 2021,
    illusory_i: int = 0,
) -> TrainingRecord:
    """Build an :class:`LNNet`, initialise it with scale ``gamma`` and train it.

    Parameters
    ----------
    inputs : torch.Tensor of shape (n_items, in_dim)
    targets : torch.Tensor of shape (n_items, out_dim)
    lr, gamma : float
        Learning rate η and initialisation scale γ.
    n_epochs, hid_dim : int
    seed : int
        Seed of the initial weights (a private generator; the global state is untouched).
    illusory_i : int
        Item whose prediction on the last feature is recorded.

    Returns
    -------
    TrainingRecord
    """
    generator = torch.Generator().manual_seed(seed)
    model = LNNet(inputs.shape[1], hid_dim, targets.shape[1])
    initializer_(model, gamma, generator=generator)
    return train(model, inputs, targets, n_epochs=n_epochs, lr=lr, illusory_i=illusory_i)


def _interactive(draw: Callable[..., None], controls: dict) -> None:
    """Display ``controls`` and an output area redrawn by ``draw`` (imports ipywidgets lazily)."""
    import ipywidgets as widgets
    from IPython.display import display

    output = widgets.interactive_output(draw, controls)
    display(widgets.VBox(list(controls.values())), output)


def _lr_slider(minimum: float):
    import ipywidgets as widgets

    return widgets.FloatSlider(
        min=minimum, max=200.0, step=1.0, value=DEFAULT_LR, continuous_update=False,
        readout_format=".1f", description="eta",
    )


def _gamma_slider():
    import ipywidgets as widgets

    return widgets.FloatLogSlider(
        min=-15, max=1, step=1, base=10, value=DEFAULT_GAMMA, continuous_update=False,
        description="gamma",
    )


def loss_widget(inputs: torch.Tensor, targets: torch.Tensor) -> None:
    """Sliders for the learning rate η ∈ [1, 200] and the initialisation scale γ ∈ [1e-15, 10].

    Each change trains a new network and redraws its training loss.

    Parameters
    ----------
    inputs : torch.Tensor of shape (n_items, in_dim)
    targets : torch.Tensor of shape (n_items, out_dim)
    """

    def draw(lr: float, gamma: float) -> None:
        record = train_deep_linear(inputs, targets, lr=lr, gamma=gamma)
        title = f"Training loss (η = {lr:g}, γ = {gamma:.0e})"
        if record.diverged_at is not None:
            title += f": diverged at epoch {record.diverged_at}, try a smaller η"
        plot_loss(record.losses, title=title)

    if static_figures():
        draw(DEFAULT_LR, DEFAULT_GAMMA)
        return
    _interactive(draw, {"lr": _lr_slider(1.0), "gamma": _gamma_slider()})


def rsm_widget(
    inputs: torch.Tensor,
    targets: torch.Tensor,
    item_names: Sequence[str] = ITEM_NAMES,
    default_epoch: int = 130,
) -> None:
    """Sliders for η, γ and the epoch (10 … 241): learning curves beside the RSM at that epoch.

    A network is trained only when η or γ changes; moving the epoch slider reuses the records.

    Parameters
    ----------
    inputs : torch.Tensor of shape (n_items, in_dim)
    targets : torch.Tensor of shape (n_items, out_dim)
    item_names : sequence of str
    default_epoch : int
    """
    cache: dict[tuple[float, float], TrainingRecord] = {}

    def draw(lr: float, gamma: float, i_ep: int) -> None:
        key = (lr, gamma)
        if key not in cache:
            cache.clear()
            cache[key] = train_deep_linear(inputs, targets, lr=lr, gamma=gamma)
        record = cache[key]
        if record.diverged_at is not None and record.diverged_at <= i_ep:
            print(
                f"Training diverged at epoch {record.diverged_at} (η = {lr:g}, γ = {gamma:.0e}): "
                "choose a smaller learning rate or an earlier epoch."
            )
            return
        plot_loss_sv_rsm(record.losses, record.modes, record.rsms, i_ep, item_names)

    if static_figures():
        draw(DEFAULT_LR, DEFAULT_GAMMA, default_epoch)
        return
    import ipywidgets as widgets

    epoch = widgets.IntSlider(
        min=10, max=241, step=1, value=default_epoch, continuous_update=False,
        description="Epoch", layout=widgets.Layout(width="630px"),
    )
    _interactive(draw, {"lr": _lr_slider(20.0), "gamma": _gamma_slider(), "i_ep": epoch})
