"""Every claim the text of tutorial 3 makes about a result, checked against the same computation.

The tutorial's training runs take minutes, so the claims about them are read from the reference run
(the solution notebook executed once per test session, ``reference_run``): each ``run_test`` prints
its parameter count, a progress line every 500 epochs and a final ``stopped after …`` line, which
:func:`training_runs` parses.  Claims about the data, the rules and the networks at initialisation
are recomputed (cheap).  Each test first asserts that the wording of its claim is in the cell it
guards, so that the text cannot change without the test.
"""

from __future__ import annotations

import inspect
import re

import numpy as np
import pytest
import torch
from torch import nn

from dlnn_helpers import deep_training as dt
from dlnn_helpers.classification_data import hard_classification, tiny_classification
from dlnn_helpers.utils import torch_threads
from dlnn_reference import deep_training as ref
from dlnn_reference.classification_rules import hard_rule, tiny_rule

from ..checks import references as t2
from .claims_tools import Run, cell_outputs, cell_source, training_runs

TUTORIAL = "T3_TrainingDeepNetworks"
SEED = 7150  # the notebook's SEED
STOP_REASONS = (
    "100% validation accuracy",
    "no progress",
    "training set fitted, validation accuracy flat",
    "the loss is not finite",
    "epoch budget",
)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Small computations: one thread is as fast on an idle machine and much faster on a busy one."""
    with torch_threads(1):
        yield


# ------------------------------------------------------------------------------ reading the runs


@pytest.fixture(scope="module")
def runs(reference_run) -> dict[str, Run]:
    """Every run of the reference run of tutorial 3, by a short name."""
    nb = reference_run(TUTORIAL)
    by_cell = {cell: list(training_runs(nb, cell).values()) for cell in
               ("bff7cc8b", "eed957f7", "7f9717b0", "3e476613", "7d78cf78", "4f8ae264", "0e7f8666",
                "1e5d3797", "8e58efc7", "48bd91d5")}
    names = {
        "bff7cc8b": ["sigmoid", "tanh", "relu"], "eed957f7": ["bce"], "7f9717b0": ["torch_sgd", "adam"],
        "3e476613": ["adam_wd"], "7d78cf78": ["width_64", "width_32", "width_16"],
        "4f8ae264": ["deep_4x64", "deep_6x32"], "0e7f8666": ["deep_6x32_bn"], "1e5d3797": ["res_4", "res_2"],
        "8e58efc7": ["bn_res_2", "bn_res_6"], "48bd91d5": ["hard_scratch", "hard_fine_tuned"],
    }
    out = {}
    for cell, cell_runs in by_cell.items():
        assert len(cell_runs) == len(names[cell]), f"cell {cell} printed {len(cell_runs)} runs"
        out.update(zip(names[cell], cell_runs, strict=True))
    return out


# ------------------------------------------------------------------------------ run_test and setup


def test_the_stopping_rules_in_the_text_are_those_of_run_test():
    text = cell_source(TUTORIAL, "ed06a29e")
    assert "Training\nstops at the first of these events" in text
    assert "the line `stopped after … epochs (…)` names it" in text
    listed = re.findall(r"^\* \*\*([^*]+)\*\*", text, re.MULTILINE)
    assert tuple(listed) == STOP_REASONS
    source = inspect.getsource(dt.run_test)
    for reason in STOP_REASONS:  # each listed reason is one run_test can give, and no other
        assert f'stop_reason = "{reason}"' in source
    assert len(re.findall(r'stop_reason = "', source)) == len(STOP_REASONS)
    defaults = {name: p.default for name, p in inspect.signature(dt.run_test).parameters.items()}
    assert defaults["patience"] == 500 and defaults["min_improvement"] == 0.01
    assert defaults["min_loss_improvement"] == 1e-3 and defaults["max_epochs"] == 2000
    assert defaults["test_every"] == 10
    assert "for 500 epochs the validation accuracy has not risen more than 0.01 above its\n  best" in text
    assert "the training loss has not fallen by even 0.1 %" in text
    assert "**epoch budget**: 2,000 epochs have run." in text
    assert "and the training loss has not fallen by even 0.1 %: the network is stuck" in text


def test_the_optimisers_are_torch_optim_and_make_the_updates_of_tutorial_2_step_for_step():
    text = cell_source(TUTORIAL, "ed06a29e")
    assert ("The optimisers are PyTorch's `torch.optim.SGD` and `torch.optim.Adam`: they make the same "
            "updates\nas the `SimpleGradientDescent` and `ADAMOptimizer` you wrote in tutorial 2, step for "
            "step.") in text
    assert "`lambda p: torch.optim.SGD(p, lr=1.0)`" in text
    makers = cell_source(TUTORIAL, "c6e381e6")
    assert "torch.optim.SGD(params, lr=lr)" in makers
    assert "torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)" in makers
    assert "optimisers" not in cell_source(TUTORIAL, "9a743b33")  # nothing of tutorial 2 imported
    data = tiny_classification()
    x, y = data.train_data[:256], data.train_labels[:256]
    for ours, theirs in [  # tutorial 2's answers (the tests' copies of the solutions)
        (lambda p: t2.SimpleGradientDescent(p, lr=1.0), lambda p: torch.optim.SGD(p, lr=1.0)),
        (lambda p: t2.ADAMOptimizer(p, lr=0.01, weight_decay=1e-3),
         lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=1e-3)),
    ]:
        weights = []
        for make in (ours, theirs):
            torch.manual_seed(SEED)
            sup = dt.Supervise(nn.BCELoss(), ref.mlp(36, 16, 3))
            optimizer = make(sup.parameters())
            for _ in range(20):
                optimizer.zero_grad()
                sup(x, y).backward()
                optimizer.step()
            weights.append(torch.cat([p.detach().reshape(-1) for p in sup.parameters()]))
        assert torch.allclose(weights[0], weights[1], atol=1e-5)


def test_the_classes_are_balanced_so_chance_is_one_half():
    text = cell_source(TUTORIAL, "ed06a29e")
    assert "The classes are balanced, so a network that has learned nothing scores 0.5" in text
    assert "There are 8,000 training grids and\n1,000 validation grids" in cell_source(TUTORIAL, "193d71fd")
    data = tiny_classification()
    assert float(data.train_labels.mean()) == 0.5 and float(data.val_labels.mean()) == 0.5
    assert data.train_data.shape == (8000, 36) and data.val_data.shape == (1000, 36)


def test_a_3_layer_network_has_two_hidden_layers_of_128_units():
    text = cell_source(TUTORIAL, "88389744")
    assert "a 3-layer network with two hidden layers of 128\nsigmoid units" in text
    assert "A \"3-layer network\" therefore has two\nhidden layers." in cell_source(TUTORIAL, "2b899fdc")
    net = ref.mlp(36, 128, 3, nn.Sigmoid)
    linears = [m for m in net if isinstance(m, nn.Linear)]
    assert len(linears) == 3 and [m.out_features for m in linears] == [128, 128, 1]


# ------------------------------------------------------------------------------ the runs


@pytest.mark.slow
def test_sigmoid_and_tanh_stall_at_chance_while_relu_ends_near_100_percent(runs):
    text = cell_source(TUTORIAL, "4d94898a")
    for claim in (
        "With sigmoid units the loss never leaves 0.25",
        "both accuracies stay at chance until `run_test` stops the run for lack of\nprogress",
        "its loss also stalled near 0.25, and its run was\nstopped for lack of progress too",
        "With ReLU the loss first sits on a long plateau near 0.25 (for\nabout a thousand epochs), then "
        "falls steeply, and the network ends close to 100 % on both sets\nafter 2,000 epochs",
        "on our data it was as\nstuck as sigmoid",
    ):
        assert claim in text
    for name in ("sigmoid", "tanh"):
        run = runs[name]
        assert run.stop_reason == "no progress"
        assert all(abs(loss - 0.25) < 0.005 for loss in run.losses) and run.losses
        assert abs(run.val_acc - 0.5) < 0.05 and abs(run.train_acc - 0.5) < 0.05
        assert all(abs(val - 0.5) < 0.05 for _, _, _, val in run.progress)
    relu = runs["relu"]
    progress = {epoch: loss for epoch, loss, _, _ in relu.progress}
    assert progress[500] > 0.2 and progress[1000] > 0.2  # the plateau near 0.25
    assert progress[2000] < 0.05 * progress[1000]  # then a steep fall
    assert relu.epochs == 2000 and relu.val_acc >= 0.98 and relu.train_acc >= 0.98


@pytest.mark.slow
def test_cross_entropy_with_learning_rate_1_is_unsteady_and_0_5_does_better(runs):
    text = cell_source(TUTORIAL, "dbba1572")
    assert "its loss and accuracies jump up and down, and it ends far below the squared\nerror's 0.99, " \
           "stopped for lack of progress" in text
    assert "A smaller\nlearning rate is the usual cure, as the next run shows." in text
    summary = cell_source(TUTORIAL, "74fc4fca")
    assert ("trained better with learning rate 0.5 than with 1, and neither run beat the squared error's"
            in summary)
    bce, mse, half = runs["bce"], runs["relu"], runs["torch_sgd"]
    losses = bce.losses
    assert any(later > earlier for earlier, later in zip(losses, losses[1:], strict=False))  # up and down
    vals = [val for _, _, _, val in bce.progress]
    assert any(later < earlier for earlier, later in zip(vals, vals[1:], strict=False))
    assert bce.stop_reason == "no progress" and round(mse.val_acc, 2) == 0.99
    assert bce.val_acc < mse.val_acc - 0.2
    assert half.val_acc > bce.val_acc + 0.1 and half.losses[-1] < min(bce.losses)
    steady = zip(half.losses, half.losses[1:], strict=False)
    assert all(later < earlier for earlier, later in steady)
    assert max(bce.val_acc, half.val_acc) < mse.val_acc


@pytest.mark.slow
def test_adam_fits_the_training_set_within_a_few_hundred_epochs_but_not_the_rule(runs):
    text = cell_source(TUTORIAL, "ecaf378d")
    assert "the training loss falls by orders of magnitude" in text
    assert ("the training accuracy reaches 1.0 within a few hundred epochs, something SGD never "
            "achieved") in text
    assert "the\nvalidation accuracy stays well below 1.0" in text
    adam = runs["adam"]
    first = adam.progress[0]
    assert first[0] == 500 and first[2] == 1.0 and first[1] < 1e-2  # 0.693 at the start
    assert adam.train_acc == 1.0 and adam.val_acc <= 0.95
    assert adam.stop_reason == "training set fitted, validation accuracy flat"
    for name in ("sigmoid", "tanh", "relu", "bce", "torch_sgd"):
        run = runs[name]
        assert run.train_acc < 1.0 and all(train < 1.0 for _, _, train, _ in run.progress)


@pytest.mark.slow
def test_weight_decay_alone_removes_the_overfitting_and_the_32_wide_network_is_thrown_back(runs):
    text = cell_source(TUTORIAL, "7c8135eb")
    assert "weight decay alone\nalready removed the over-fitting of the 128-wide network" in text
    assert ("the 64- and 16-wide networks reached\n100 % validation accuracy too, the 16-wide one after more "
            "epochs than the wider ones.") in text
    assert ("The 32-wide\nnetwork climbed above 0.95 and then, after about a thousand epochs, its loss "
            "jumped and it fell back\nto chance") in text
    assert "with it, the 128-wide network reached 100 %" in cell_source(TUTORIAL, "74fc4fca")
    widths = {128: runs["adam_wd"], 64: runs["width_64"], 16: runs["width_16"]}
    for run in widths.values():
        assert run.stop_reason == "100% validation accuracy" and run.val_acc == 1.0
    assert widths[16].epochs > max(widths[128].epochs, widths[64].epochs)
    thrown = runs["width_32"]
    assert thrown.val_acc == 0.5 and thrown.train_acc == 0.5 and thrown.stop_reason == "no progress"
    assert 1000 <= thrown.epochs <= 1200
    (progress,) = [p for p in thrown.progress if p[0] == 1000]
    assert progress[3] > 0.95 and progress[1] < 0.05  # above 0.95 (and a small loss) before the jump


def test_the_32_wide_runs_loss_jumps_by_orders_of_magnitude():
    """The jump itself, read from the recorded run (the same run: see the precomputed-runs test)."""
    import json

    record = json.loads(dt.PRECOMPUTED_RUNS.read_text(encoding="utf-8"))[
        "3 layers × 32, ReLU, BCE, Adam + weight decay"]
    losses = dt._unpack(record["losses"], "<f4")
    jump = int(np.argmax(losses[1:] / losses[:-1])) + 1
    assert 900 < jump < 1100 and losses[jump] > 10 * losses[:jump].min()
    assert dt._unpack(record["val_accs"], "<f4").max() > 0.95


def test_the_32_wide_run_ends_at_exactly_50_a_saturated_sigmoid_that_bceloss_clamps():
    """The loss of exactly 50.0: BCELoss's log clamped at -100 on the half of the grids of the other
    class, a sigmoid output saturated at 1 for every grid, and no gradient through it."""
    import json

    text = " ".join(cell_source(TUTORIAL, "3b5e0c4d").split())
    for claim in (
        "the loss grows from 0.03 to 50 within ten epochs and stays at **exactly 50.0** until the run is "
        "stopped",
        "In float32 the sigmoid of a logit above about 17 is exactly 1.0",
        "which `BCELoss` clamps to 100. This network answers 1, with complete certainty, for every grid",
        "the sigmoid's derivative $p (1 - p)$ is exactly 0 at $p = 1$",
        "Its gradient with respect to the logit is $p - y$",
    ):
        assert claim in text
    answer = " ".join(cell_source(TUTORIAL, "7c8135eb").split())
    assert "within ten epochs its output saturated on one class for every grid" in answer
    assert "one large Adam step" not in answer
    record = json.loads(dt.PRECOMPUTED_RUNS.read_text(encoding="utf-8"))[
        "3 layers × 32, ReLU, BCE, Adam + weight decay"]
    losses = dt._unpack(record["losses"], "<f4")
    at_50 = int(np.argmax(losses == 50.0))  # the first epoch at exactly 50
    assert at_50 > 0 and np.all(losses[at_50:] == 50.0)
    start = int(np.flatnonzero(losses[:at_50] < 0.04)[-1])  # the last epoch at 0.03 and some
    assert 900 < start < 1100 and losses[start] >= 0.03 and at_50 - start <= 10
    predictions = np.unpackbits(dt._unpack(record["val_predictions"], "u1"))[:1000]
    assert predictions.all()  # answers 1 for every grid
    assert record["stop_reason"] == "no progress"
    # the mechanism: sigmoid(z) rounds to 1.0 from about 17 on; BCELoss clamps log 0 to -100 and
    # passes no gradient back; BCEWithLogitsLoss gives p - y
    assert torch.sigmoid(torch.tensor(17.0)) == 1.0 and torch.sigmoid(torch.tensor(16.0)) < 1.0
    labels = tiny_classification().train_labels
    saturated = torch.full_like(labels, 30.0, requires_grad=True)
    loss = nn.BCELoss()(torch.sigmoid(saturated), labels)
    loss.backward()
    assert loss.item() == 50.0 and torch.all(saturated.grad == 0)
    saturated.grad = None
    nn.BCEWithLogitsLoss()(saturated, labels).backward()
    expected = (torch.sigmoid(saturated.detach()) - labels) / len(labels)
    assert torch.allclose(saturated.grad, expected)


def test_the_demonstration_prints_both_losses_of_one_confidently_wrong_output():
    source = cell_source(TUTORIAL, "9c2f7a16")
    assert "torch.tensor([30.0], requires_grad=True)" in source and "torch.tensor([0.0])" in source
    logit, label = torch.tensor([30.0], requires_grad=True), torch.tensor([0.0])
    loss = nn.BCELoss()(torch.sigmoid(logit), label)
    loss.backward()
    assert loss.item() == 100.0 and logit.grad.item() == 0.0
    logit.grad = None
    loss = nn.BCEWithLogitsLoss()(logit, label)
    loss.backward()
    assert loss.item() == 30.0 and logit.grad.item() == 1.0


@pytest.mark.slow
def test_the_plain_6_layer_network_never_moves_while_batchnorm_and_residual_networks_learn(runs):
    text = cell_source(TUTORIAL, "5bd51463")
    for claim in (
        "The plain 6-layer network never moved: its loss stayed at ln 2 ≈ 0.693",
        "both accuracies stayed at 0.5 until the run was stopped\nfor lack of progress",
        "the same 6-layer network with two BatchNorm layers reached 100 %",
        "our residual networks\nlearned the rule even without BatchNorm",
        "with both BatchNorm and skip connections they were the\nfastest of all (within 300 epochs)",
    ):
        assert claim in text
    summary = cell_source(TUTORIAL, "74fc4fca")
    assert "BatchNorm and residual connections make deep networks\n  train reliably, and together they " \
           "solved this task fastest" in summary
    plain = runs["deep_6x32"]
    assert plain.stop_reason == "no progress"
    assert all(abs(loss - 0.6931) < 1e-3 for loss in plain.losses) and plain.losses
    assert plain.val_acc == 0.5 and plain.train_acc == 0.5
    assert runs["deep_6x32_bn"].val_acc == 1.0
    for name in ("res_4", "res_2"):
        assert runs[name].val_acc == 1.0
    fastest = sorted(runs.values(), key=lambda r: r.epochs if r.val_acc == 1.0 else 10**6)
    tiny_runs = [r for r in fastest if not r.label.startswith("hard")]
    assert {r.label for r in tiny_runs[:2]} == {runs["bn_res_2"].label, runs["bn_res_6"].label}
    assert all(runs[name].epochs <= 300 for name in ("bn_res_2", "bn_res_6"))


def test_with_default_initialisation_the_grid_dependent_signal_shrinks_through_the_relu_layers():
    text = cell_source(TUTORIAL, "5bd51463")
    assert ("the part of the signal that\ndepends on the grid shrinks by a factor of two to three at each of "
            "the five ReLU layers (about forty\nin all)") in text
    assert "while the biases keep the activations at their usual size" in text
    assert "torch.manual_seed(SEED)" in cell_source(TUTORIAL, "4f8ae264")
    torch.manual_seed(SEED)
    net = ref.mlp(36, 32, 6, nn.ReLU)
    h, spreads, levels = tiny_classification().val_data, [], []
    with torch.no_grad():
        for module in net:
            h = module(h)
            if isinstance(module, nn.ReLU):
                spreads.append(float(h.std(dim=0).mean()))  # across grids, per unit
                levels.append(float(h.mean(dim=0).abs().mean()))
    ratios = np.array(spreads[1:]) / np.array(spreads[:-1])
    assert len(spreads) == 5 and np.all((ratios > 1 / 3.2) & (ratios < 1 / 2))
    assert 25 < spreads[0] / spreads[-1] < 60
    assert levels[-1] > 10 * spreads[-1]  # the biases, not the grid, set the last hidden layer


@pytest.mark.slow
def test_the_deep_networks_have_a_few_thousand_parameters(runs):
    assert "all have a few thousand parameters." in cell_source(TUTORIAL, "0366082a")
    for name in ("deep_6x32", "res_4", "res_2", "bn_res_2", "bn_res_6"):
        assert 2000 < runs[name].n_parameters < 10000


@pytest.mark.slow
def test_fine_tuning_learns_the_hard_task_where_training_from_scratch_only_memorises(runs):
    text = cell_source(TUTORIAL, "42a567bb")
    assert "(training accuracy rises, validation accuracy stays near 0.5)" in text
    assert "fine-tuning it works here too" in cell_source(TUTORIAL, "1caabfcc")
    assert "A network trained on one task can be the best starting point" in cell_source(TUTORIAL, "74fc4fca")
    scratch, tuned = runs["hard_scratch"], runs["hard_fine_tuned"]
    assert scratch.train_acc >= 0.75 and scratch.progress[0][2] >= 0.75
    assert abs(scratch.val_acc - 0.5) < 0.05 and all(abs(val - 0.5) < 0.05 for *_, val in scratch.progress)
    assert tuned.val_acc == 1.0 and tuned.epochs < scratch.epochs


def _reference_rule():
    """``ex_tiny_rule`` of the solution notebook, run from its cell."""
    namespace: dict = {}
    exec(cell_source(TUTORIAL, "a1e5c3d7"), namespace)  # noqa: S102 - the course's own reference
    return namespace["ex_tiny_rule"]


@pytest.mark.slow
def test_seven_pixels_matter_four_always_and_three_corners_a_quarter_of_the_time(reference_run):
    text = cell_source(TUTORIAL, "e41c7b2a")
    for claim in (
        "Seven pixels matter.",
        "The four in the centre change the answer **every** time they\nflip",
        "a\ncorner's flip matters on the quarter of the grids where both others are on",
        "Three corners — top left, top right and bottom\nright — change it about a **quarter** of the time",
    ):
        assert claim in text
    out = cell_outputs(reference_run(TUTORIAL), "facb8cf8")
    changed = {(int(r), int(c)): float(p) / 100 for r, c, p in
               re.findall(r"pixel \(row (\d), column (\d)\) changes the answer for ([\d.]+)%", out)}
    assert set(changed) == {(2, 2), (2, 3), (3, 2), (3, 3), (0, 0), (0, 5), (5, 5)}
    assert all(changed[p] == 1.0 for p in [(2, 2), (2, 3), (3, 2), (3, 3)])
    assert all(0.2 <= changed[p] <= 0.33 for p in [(0, 0), (0, 5), (5, 5)])
    rest = re.search(r"every other pixel changes it for at most ([\d.]+)%", out)
    assert rest and float(rest[1]) <= 1.0


def test_the_rule_agrees_with_the_labels_and_the_network_on_every_validation_grid():
    text = " ".join(cell_source(TUTORIAL, "e41c7b2a").split())
    assert ("This rule agrees with the labels and with the network on 100 % of the validation grids: it "
            "is the rule the tiny task's labels were generated with.") in text
    assert ("The label is 1 when the number of centre pixels that are on, plus one if all three corners "
            "are on, is odd.") in text
    assert not re.search(r"\btiny_rule\b", cell_source(TUTORIAL, "9a743b33"))  # not handed over above
    rule = _reference_rule()
    data = tiny_classification()
    grids = data.val_data.reshape(-1, 6, 6)
    decompiled = rule(grids).numpy().astype(np.int64)
    assert np.array_equal(decompiled, data.val_labels.numpy().astype(np.int64))
    assert np.array_equal(decompiled, tiny_rule(grids.numpy().astype(np.int64)))
    net = dt.precomputed("ex_residual_net")(36, 16, 32, 2, batchnorm=True)
    net.record = dt.load_precomputed("BatchNorm + 2 residual blocks, Adam + weight decay")
    assert np.array_equal(dt.predict(net, data.val_data).numpy().astype(np.int64), decompiled)
    corners = grids[:, 0, 0] * grids[:, 0, 5] * grids[:, 5, 5]
    assert 0.1 < float(corners.mean()) < 0.15  # all three corners on: an eighth of the grids


def test_a_corner_matters_exactly_when_the_other_two_are_on_and_the_hard_rule_adds_the_fourth():
    text = cell_source(TUTORIAL, "e41c7b2a")
    assert "a corner matters exactly\nwhen the other two are on" in text
    hard_text = cell_source(TUTORIAL, "35dbc285")
    assert "The hard rule adds the fourth corner, bottom left, to the count." in hard_text
    grids = tiny_classification().val_data.reshape(-1, 6, 6).numpy().astype(np.int64)
    corners = [(0, 0), (0, 5), (5, 5)]
    for corner in corners:
        flipped = grids.copy()
        flipped[:, corner[0], corner[1]] ^= 1
        changes = tiny_rule(flipped) != tiny_rule(grids)
        others = np.all([grids[:, r, c] == 1 for r, c in corners if (r, c) != corner], axis=0)
        assert np.array_equal(changes, others)
    hard = hard_classification()
    hard_grids = hard.val_data.reshape(-1, 6, 6).numpy().astype(np.int64)
    assert np.array_equal(hard_rule(hard_grids), tiny_rule(hard_grids) ^ hard_grids[:, 5, 0])
    assert np.array_equal(hard_rule(hard_grids), hard.val_labels.numpy().astype(np.int64))


@pytest.mark.slow
def test_every_run_stops_for_a_reason_the_text_lists(runs):
    assert "ours stop early by the rules of `run_test` above" in cell_source(TUTORIAL, "124126b3")
    assert "Every\nexperiment trains full-batch for at most 2,000 epochs" in cell_source(TUTORIAL, "2418cb63")
    reasons = {run.stop_reason for run in runs.values()}
    assert reasons <= set(STOP_REASONS)
    assert {"no progress", "100% validation accuracy", "epoch budget"} <= reasons  # the output shows them
    assert all(run.epochs <= 2000 for run in runs.values())


@pytest.mark.slow
def test_the_set_up_cell_prints_no_stray_value(reference_run):
    assert cell_outputs(reference_run(TUTORIAL), "9a743b33") == "Random seed 7150 has been set.\n"


def test_until_ex_mlp_works_the_notebook_replays_the_courses_runs():
    text = cell_source(TUTORIAL, "c59238c6")
    assert ("Until then `precomputed(\"ex_mlp\")` stands in for it: it builds nothing, and `run_test`\n"
            "shows the run the course made with its own version under the same label instead") in text
    assert 'precomputed("ex_mlp")' in cell_source(TUTORIAL, "981d877d")
    net = dt.precomputed("ex_mlp")(36, 128, 3, nn.Sigmoid)
    assert not list(net.parameters())


@pytest.mark.slow
def test_the_precomputed_runs_are_the_runs_of_the_reference_notebooks(runs, reference_run):
    """The data the student notebooks replay is what the solution notebooks compute now."""
    import json

    records = json.loads(dt.PRECOMPUTED_RUNS.read_text(encoding="utf-8"))
    t4 = list(training_runs(reference_run("T4_WeightInitialisation"), "f0190a68").values())
    shown = [*runs.values(), *t4]
    assert sorted(r.label for r in shown) == sorted(records)
    for run in shown:
        record = records[run.label]
        losses = dt._unpack(record["losses"], "<f4")
        assert record["stop_reason"] == run.stop_reason and len(losses) == run.epochs
        assert record["n_parameters"] == run.n_parameters
        assert f"{dt._unpack(record['val_accs'], '<f4')[-1]:.3f}" == f"{run.val_acc:.3f}"
        assert [f"{losses[epoch - 1]:.4g}" for epoch, *_ in run.progress] == [
            f"{loss:.4g}" for loss in run.losses]
