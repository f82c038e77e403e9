"""Interactive widgets of the course, all drawn through one mechanism.

Every widget is a :class:`LiveFigure`: a few controls (sliders) above an ``ipywidgets.Image``.  A
change of a control calls a ``draw`` function that returns a matplotlib figure (or a one-line
message); the figure is rendered to PNG bytes, closed, and the bytes become the image's value.
Nothing is printed or displayed from inside a callback: there is no ``Output`` widget capturing and
no ``interactive_output``, whose output capture can stall a kernel that has no front end
(``nbconvert --execute``, CI).  The figure shown first is drawn while the cell runs.

When :func:`dlnn_helpers.course.static_figures` is true (the site build sets
``DLNN_STATIC_WIDGETS=1``; nbgrader sets ``NBGRADER_EXECUTION``) a widget instead draws its figure
once, for its default settings, as an ordinary figure, so that a page without widget JavaScript
still shows it.

Tutorial 1's widgets (:func:`loss_widget`, :func:`rsm_widget`) live here;
:func:`dlnn_helpers.relu_features.snapshot_slider` of tutorial 6 uses :func:`interactive_figure`.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from .course import static_figures
from .deep_linear_data import ITEM_NAMES
from .deep_linear_nets import LNNet, TrainingRecord
from .deep_linear_plots import plot_loss, plot_loss_sv_rsm

DEFAULT_LR = 100.0
DEFAULT_GAMMA = 1e-12
DEFAULT_EPOCHS = 250
DEFAULT_HIDDEN = 30

Drawing = Figure | str
"""What a ``draw`` function returns: a figure, or a one-line message shown instead of one."""


TrainLoop = Callable[..., TrainingRecord]
"""The notebook's training loop: ``train(model, inputs, targets, n_epochs=, lr=, illusory_i=)``."""
Initializer = Callable[[torch.nn.Module, float], None]
"""The notebook's initialiser: ``initializer_(model, gamma)`` re-draws every weight in place."""


def train_deep_linear(
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    train: TrainLoop,
    initializer: Initializer,
    lr: float = DEFAULT_LR,
    gamma: float = DEFAULT_GAMMA,
    n_epochs: int = DEFAULT_EPOCHS,
    hid_dim: int = DEFAULT_HIDDEN,
    seed: int = 2021,
    illusory_i: int = 0,
) -> TrainingRecord:
    """Build an :class:`LNNet`, initialise it as the notebook does and train it with ``train``.

    The weights are drawn by ``initializer(model, gamma)`` (the student's ``ex_initializer_`` or
    its stand-in) right after seeding torch's generator with ``seed``, exactly as the notebook's
    own runs do, so the same ``seed`` gives the same initial weights; the caller's generator state
    is restored afterwards.

    Parameters
    ----------
    inputs : torch.Tensor of shape (n_items, in_dim)
    targets : torch.Tensor of shape (n_items, out_dim)
    train : callable
        The notebook's training loop (what it records is what the widgets can show).
    initializer : callable
        ``initializer(model, gamma)``, in place.
    lr, gamma : float
        Learning rate η and initialisation scale γ.
    n_epochs, hid_dim : int
    seed : int
        Seed of torch's global generator while the weights are drawn.
    illusory_i : int
        Item whose prediction on the last feature is recorded.

    Returns
    -------
    TrainingRecord
    """
    model = LNNet(inputs.shape[1], hid_dim, targets.shape[1])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        initializer(model, gamma)
    return train(model, inputs, targets, n_epochs=n_epochs, lr=lr, illusory_i=illusory_i)


# ------------------------------------------------------------------------------------------------
# The one mechanism
# ------------------------------------------------------------------------------------------------


def _message_figure(text: str) -> Figure:
    fig = plt.figure(figsize=(9, 1.0))
    fig.text(0.01, 0.5, text, va="center", ha="left", fontsize=11, wrap=True)
    return fig


def figure_png(drawing: Drawing, dpi: int = 80) -> bytes:
    """Render a figure (or a message, drawn as text) to PNG bytes and close the figure.

    Parameters
    ----------
    drawing : matplotlib Figure or str
    dpi : int

    Returns
    -------
    png : bytes
    """
    fig = _message_figure(drawing) if isinstance(drawing, str) else drawing
    try:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi)
        return buffer.getvalue()
    finally:
        plt.close(fig)


class LiveFigure:
    """Controls above an image that a change of any control redraws.

    Parameters
    ----------
    draw : callable
        ``draw(**values) -> Figure | str`` with one keyword per control; a string is shown as a
        message instead of a figure.  The figure is closed once rendered.
    controls : mapping of str to ipywidgets value widgets
        The controls, in display order; their keys are ``draw``'s keywords.
    dpi : int
        Resolution of the rendered PNG.

    Attributes
    ----------
    controls : dict
    image : ipywidgets.Image
    box : ipywidgets.VBox
        The controls followed by the image; this is what is displayed.
    renders : int
        How many times the image was drawn (1 after construction).
    """

    def __init__(self, draw: Callable[..., Drawing], controls: Mapping[str, Any], dpi: int = 80):
        import ipywidgets as widgets

        self._draw = draw
        self._dpi = dpi
        self.controls = dict(controls)
        self.renders = 0
        self.image = widgets.Image(value=self._render(), format="png")
        self.box = widgets.VBox([*self.controls.values(), self.image])
        for control in self.controls.values():
            control.observe(self._on_change, names="value")

    def values(self) -> dict[str, Any]:
        """The current value of every control, by keyword."""
        return {name: control.value for name, control in self.controls.items()}

    def _render(self) -> bytes:
        png = figure_png(self._draw(**self.values()), dpi=self._dpi)
        self.renders += 1
        return png

    def _on_change(self, change: dict) -> None:
        # Runs outside any cell: it must neither print nor display.  An error is drawn in the image,
        # where the student sees it, rather than lost in the kernel's log.
        try:
            png = self._render()
        except Exception as error:  # noqa: BLE001 - shown to the student in the image
            png = figure_png(f"{type(error).__name__}: {error}", dpi=self._dpi)
        self.image.value = png

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.box)


def interactive_figure(
    draw: Callable[..., Drawing],
    defaults: Mapping[str, Any],
    make_controls: Callable[[], Mapping[str, Any]],
    *,
    display: bool = True,
) -> LiveFigure | None:
    """Show ``draw``'s figure with controls, or once for ``defaults`` where figures are static.

    Parameters
    ----------
    draw : callable
        ``draw(**values) -> Figure | str``.
    defaults : mapping
        The values drawn when :func:`~dlnn_helpers.course.static_figures` is true.
    make_controls : callable
        Returns the controls (ipywidgets value widgets, keyed like ``draw``'s keywords); called
        only for the interactive widget, so that static runs need no ipywidgets.
    display : bool
        Display the widget (and return None) or return it undisplayed (for tests).

    Returns
    -------
    LiveFigure or None
        The widget when ``display`` is false and figures are interactive, else None.
    """
    if static_figures():
        drawing = draw(**defaults)
        if isinstance(drawing, str):
            print(drawing)
        else:
            plt.show()
        return None
    live = LiveFigure(draw, make_controls())
    if not display:
        return live
    from IPython.display import display as show

    show(live.box)
    return None


# ------------------------------------------------------------------------------------------------
# Tutorial 1
# ------------------------------------------------------------------------------------------------


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


def loss_widget(
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    train: TrainLoop,
    initializer: Initializer,
    seed: int = 2021,
    display: bool = True,
) -> LiveFigure | None:
    """Sliders for the learning rate η ∈ [1, 200] and the initialisation scale γ ∈ [1e-15, 10].

    Each change trains a new network with the notebook's ``train`` and ``initializer`` (see
    :func:`train_deep_linear`) and redraws its training loss.

    Parameters
    ----------
    inputs : torch.Tensor of shape (n_items, in_dim)
    targets : torch.Tensor of shape (n_items, out_dim)
    train, initializer : callable
        The notebook's training loop and initialiser.
    seed : int
        Seed of the initial weights (the notebook's ``SEED``).
    display : bool
        Display the widget (default) or return it undisplayed (see :func:`interactive_figure`).

    Returns
    -------
    LiveFigure or None
    """

    def draw(lr: float, gamma: float) -> Figure:
        record = train_deep_linear(inputs, targets, train=train, initializer=initializer, lr=lr,
                                   gamma=gamma, seed=seed)
        title = f"Training loss (η = {lr:g}, γ = {gamma:.0e})"
        if record.diverged_at is not None:
            title += f": diverged at epoch {record.diverged_at}, try a smaller η"
        return plot_loss(record.losses, title=title, show=False)

    return interactive_figure(
        draw,
        {"lr": DEFAULT_LR, "gamma": DEFAULT_GAMMA},
        lambda: {"lr": _lr_slider(1.0), "gamma": _gamma_slider()},
        display=display,
    )


def rsm_widget(
    inputs: torch.Tensor,
    targets: torch.Tensor,
    item_names: Sequence[str] = ITEM_NAMES,
    default_epoch: int = 130,
    *,
    train: TrainLoop,
    initializer: Initializer,
    seed: int = 2021,
    display: bool = True,
) -> LiveFigure | None:
    """Sliders for η, γ and the epoch (10 … 241): learning curves beside the RSM at that epoch.

    A network is trained (with the notebook's ``train`` and ``initializer``, see
    :func:`train_deep_linear`) only when η or γ changes; moving the epoch slider reuses the
    records.  ``train`` must record the singular values and the RSM.

    Parameters
    ----------
    inputs : torch.Tensor of shape (n_items, in_dim)
    targets : torch.Tensor of shape (n_items, out_dim)
    item_names : sequence of str
    default_epoch : int
    train, initializer : callable
        The notebook's training loop and initialiser.
    seed : int
        Seed of the initial weights (the notebook's ``SEED``).
    display : bool
        Display the widget (default) or return it undisplayed (see :func:`interactive_figure`).

    Returns
    -------
    LiveFigure or None
    """
    cache: dict[tuple[float, float], TrainingRecord] = {}

    def draw(lr: float, gamma: float, i_ep: int) -> Drawing:
        key = (lr, gamma)
        if key not in cache:
            cache.clear()
            cache[key] = train_deep_linear(inputs, targets, train=train, initializer=initializer,
                                           lr=lr, gamma=gamma, seed=seed)
        record = cache[key]
        if record.diverged_at is not None and record.diverged_at <= i_ep:
            return (
                f"Training diverged at epoch {record.diverged_at} (η = {lr:g}, γ = {gamma:.0e}): "
                "choose a smaller learning rate or an earlier epoch."
            )
        return plot_loss_sv_rsm(
            record.losses, record.modes, record.rsms, i_ep, item_names, show=False
        )

    def controls() -> dict:
        import ipywidgets as widgets

        epoch = widgets.IntSlider(
            min=10, max=241, step=1, value=default_epoch, continuous_update=False,
            description="Epoch", layout=widgets.Layout(width="630px"),
        )
        return {"lr": _lr_slider(20.0), "gamma": _gamma_slider(), "i_ep": epoch}

    return interactive_figure(
        draw, {"lr": DEFAULT_LR, "gamma": DEFAULT_GAMMA, "i_ep": default_epoch}, controls,
        display=display,
    )
