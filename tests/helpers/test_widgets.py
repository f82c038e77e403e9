"""dlnn_helpers.widgets: the course's one widget mechanism and tutorial 1's widgets.

Drawn in this process: static on the site, controls built interactively, a moved control redraws,
a message or an error takes the figure's place, a diverging run is reported.

Every widget of the course also runs in a headless kernel without stalling (issue 13).

A kernel with no front end (``nbconvert --execute``, CI) is started WITHOUT ``DLNN_STATIC_WIDGETS``
and ``NBGRADER_EXECUTION``, so that the widgets are built interactively; each widget is displayed
as a notebook would, then driven: a control is moved programmatically, which runs the callback that
a student's slider would.  A per-cell timeout turns a stall into a failure instead of a hang.

A static test keeps the course on one widget mechanism (:func:`dlnn_helpers.widgets.interactive_figure`)
and makes sure the headless test knows every widget that uses it.
"""

from __future__ import annotations

import ast
import time

import matplotlib
import nbformat
import numpy as np
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import dlnn_helpers as dlnn  # noqa: E402
from dlnn_helpers.course import STATIC_ENV_VAR  # noqa: E402
from dlnn_reference.deep_linear import initializer_  # noqa: E402

from ..t1_loop import deep_run, recording_train  # noqa: E402
from ..tools import ROOT, course  # noqa: E402

LOOP = {"train": recording_train(), "initializer": initializer_}

CELL_TIMEOUT = 60  # seconds per cell: the first cell imports torch, the others take well under 1 s
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

# Every function of dlnn_helpers that builds a widget, and the call that builds it on small data.
WIDGETS = {
    "loss_widget": "dlnn.loss_widget(x, y, train=train, initializer=initializer_{display})",
    "rsm_widget": "dlnn.rsm_widget(x, y, train=train, initializer=initializer_{display})",
    "snapshot_slider": "rf.snapshot_slider(histories, data{display})",
}
# Which control each drive moves, and to what.
MOVES = {"loss_widget": ("gamma", 1e-3), "rsm_widget": ("i_ep", 20), "snapshot_slider": ("step", 0)}

SETUP = """\
import torch
from IPython.display import display

import dlnn_helpers as dlnn
from dlnn_helpers import relu_features as rf
from dlnn_helpers.course import static_figures
from dlnn_reference.deep_linear import initializer_
from tests.t1_loop import recording_train

train = recording_train()  # tutorial 1's loop as its notebook writes it

assert not static_figures(), "the headless test must build interactive widgets"
labels, features = dlnn.generate_hsd(100, random_state=0)
x, y = torch.tensor(labels).float(), torch.tensor(features).float()
data = rf.make_relu_data(n_samples=20, n_grid=30, random_state=0)
nets = [rf.make_relu_net(4, generator=torch.Generator().manual_seed(0))]
histories = rf.train_relu_nets(nets, data, n_steps=20, snapshot_every=10)
"""

DRIVE = """\
live = {call}
display(live.box)
before = live.image.value
live.controls[{control!r}].value = {value!r}
print("{name}:", live.renders, live.image.value[:4] == b"\\x89PNG", live.image.value != before)
"""


def _notebook() -> nbformat.NotebookNode:
    cells = [nbformat.v4.new_code_cell(SETUP)]
    for name, call in WIDGETS.items():
        cells.append(nbformat.v4.new_code_cell(call.format(display="")))  # as the tutorials do
        control, value = MOVES[name]
        cells.append(nbformat.v4.new_code_cell(DRIVE.format(
            call=call.format(display=", display=False"), control=control, value=value, name=name,
        )))
    return nbformat.v4.new_notebook(cells=cells)


@pytest.mark.slow  # a fresh interpreter or kernel: seconds
def test_every_widget_runs_and_redraws_in_a_headless_kernel():
    from nbclient import NotebookClient

    env = course.tool_env()
    env.pop(course.STATIC_ENV_VAR, None)
    env.pop("NBGRADER_EXECUTION", None)
    nb = _notebook()
    start = time.perf_counter()
    NotebookClient(
        nb, timeout=CELL_TIMEOUT, kernel_name="python3",
        resources={"metadata": {"path": str(ROOT)}},
        extra_arguments=["--IPKernelApp.log_level=ERROR"],
    ).execute(env=env)  # raises CellTimeoutError on a stall, CellExecutionError on an error
    seconds = time.perf_counter() - start

    for cell in nb.cells:
        assert cell.execution_count is not None, f"cell did not run:\n{cell.source}"
        stderr = [o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stderr"]
        assert not stderr, f"stderr from\n{cell.source}\n{stderr}"
    for i, name in enumerate(WIDGETS):
        shown, driven = nb.cells[1 + 2 * i], nb.cells[2 + 2 * i]
        views = [o for o in shown.outputs if WIDGET_VIEW in o.get("data", {})]
        assert len(views) == 1, f"{name} displayed {len(views)} widgets: {shown.outputs}"
        assert not [o for o in shown.outputs if "image/png" in o.get("data", {})], (
            f"{name} left a figure open for the inline backend"
        )
        printed = "".join(o.text for o in driven.outputs if o.output_type == "stream")
        # two renders (built, then moved), both PNG images, and the move changed the picture
        assert printed.strip() == f"{name}: 2 True True", printed
    assert seconds < 5 * CELL_TIMEOUT


def _calls_in(tree: ast.AST, function: str) -> list[str]:
    """Names of the top-level functions of a module that call ``function``."""
    callers = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            for inner in ast.walk(node):
                if (isinstance(inner, ast.Call) and isinstance(inner.func, ast.Name)
                        and inner.func.id == function):
                    callers.append(node.name)
                    break
    return callers


def test_one_widget_mechanism_and_the_headless_test_knows_every_widget():
    callers = []
    banned = {"interactive_output", "interact", "interactive", "Output"}
    for path in sorted((ROOT / "dlnn_helpers").rglob("*.py")):
        source = path.read_text()
        tree = ast.parse(source)
        used = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
        used |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                 for alias in node.names}
        assert not used & banned, (
            f"{path.relative_to(ROOT)} uses {sorted(used & banned)}: draw widgets through "
            "dlnn_helpers.widgets.interactive_figure, which cannot stall a headless kernel"
        )
        if "ipywidgets" in source:
            assert path.name in ("widgets.py", "relu_features.py"), (
                f"{path.relative_to(ROOT)} builds widgets; add them to the headless test"
            )
        callers += _calls_in(tree, "interactive_figure")
    assert sorted(callers) == sorted(WIDGETS), (
        f"widgets built with interactive_figure: {sorted(callers)}; the headless test drives "
        f"{sorted(WIDGETS)}"
    )


# ------------------------------------------------------------------------- drawn in this process


@pytest.mark.usefixtures("no_warnings_and_close")
def test_widgets_draw_one_static_figure_on_the_site(monkeypatch):
    monkeypatch.setenv(STATIC_ENV_VAR, "1")
    monkeypatch.setattr(plt, "show", lambda: None)
    labels, features = dlnn.generate_hsd(random_state=0)
    x, y = torch.tensor(labels).float(), torch.tensor(features).float()
    dlnn.loss_widget(x, y, **LOOP)
    assert len(plt.get_fignums()) == 1
    dlnn.rsm_widget(x, y, **LOOP)
    assert len(plt.get_fignums()) == 2
    assert plt.figure(2).axes[1].get_title() == "RSM at epoch 130"


@pytest.mark.usefixtures("no_warnings_and_close")
def test_widgets_build_controls_interactively(monkeypatch):
    monkeypatch.delenv(STATIC_ENV_VAR, raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *objs: shown.extend(objs))
    labels, features = dlnn.generate_hsd(200, random_state=0)
    x, y = torch.tensor(labels).float(), torch.tensor(features).float()
    assert dlnn.rsm_widget(x, y, **LOOP) is None
    (box,) = shown
    *controls, image = box.children
    assert [control.description for control in controls] == ["eta", "gamma", "Epoch"]
    assert controls[2].min == 10 and controls[2].max == 241 and controls[2].value == 130
    assert controls[1].value == pytest.approx(1e-12)
    assert image.value[:4] == b"\x89PNG"
    assert plt.get_fignums() == []  # rendered and closed: nothing left for the inline backend


@pytest.mark.usefixtures("no_warnings_and_close")
def test_moving_a_control_redraws_the_image(monkeypatch):
    monkeypatch.delenv(STATIC_ENV_VAR, raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    labels, features = dlnn.generate_hsd(200, random_state=0)
    x, y = torch.tensor(labels).float(), torch.tensor(features).float()
    live = dlnn.rsm_widget(x, y, **LOOP, display=False)
    first = live.image.value
    live.controls["i_ep"].value = 20
    assert live.renders == 2 and live.image.value[:4] == b"\x89PNG" and live.image.value != first
    loss = dlnn.loss_widget(x, y, **LOOP, display=False)
    before = loss.image.value
    loss.controls["gamma"].value = 1e-3
    assert loss.renders == 2 and loss.image.value != before
    assert plt.get_fignums() == []


@pytest.mark.usefixtures("no_warnings_and_close")
def test_a_message_or_an_error_replaces_the_figure(monkeypatch):
    monkeypatch.delenv(STATIC_ENV_VAR, raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    import ipywidgets

    from dlnn_helpers.widgets import LiveFigure, figure_png

    def draw(n: int):
        if n < 0:
            raise ValueError("n must be non-negative")
        return "a message" if n == 0 else dlnn.plot_loss(np.arange(n), show=False)

    live = LiveFigure(draw, {"n": ipywidgets.IntSlider(value=3, min=-1)})
    drawn = live.image.value
    live.controls["n"].value = 0
    assert live.image.value == figure_png("a message") != drawn
    live.controls["n"].value = -1  # an error in a callback is drawn where the student looks
    assert live.image.value == figure_png("ValueError: n must be non-negative")
    assert plt.get_fignums() == []


@pytest.mark.usefixtures("no_warnings_and_close")
def test_divergence_is_reported_not_raised(monkeypatch, capsys):
    labels, features = dlnn.generate_hsd(100, random_state=0)
    x, y = torch.tensor(labels).float(), torch.tensor(features).float()
    record = deep_run(x, y, lr=200.0, gamma=10.0)
    assert record.diverged_at is not None
    assert np.isnan(record.losses[-1]) and np.all(np.isfinite(record.losses[: record.diverged_at]))
    monkeypatch.setenv(STATIC_ENV_VAR, "1")
    monkeypatch.setattr(plt, "show", lambda: None)
    monkeypatch.setattr("dlnn_helpers.widgets.DEFAULT_LR", 200.0)
    monkeypatch.setattr("dlnn_helpers.widgets.DEFAULT_GAMMA", 10.0)
    dlnn.loss_widget(x, y, **LOOP)
    assert "diverged at epoch" in plt.gcf().axes[0].get_title()
    dlnn.rsm_widget(x, y, **LOOP)
    assert "Training diverged" in capsys.readouterr().out
