"""The gate table's run plan: what a run starts, in what order, and what it skips."""

from __future__ import annotations

from moola.gates.graph import BY_NAME, run_plan


def test_with_unlabelled_windows_every_gate_runs_each_after_its_inputs():
    start, skip = run_plan(has_unlabeled=True)
    assert [g.name for g in start] == ["baseline", "pretrain", "minirocket", "augment", "transfer"] and skip == []
    order = [g.name for g in start]
    assert all(order.index(inp) < order.index(g.name) for g in start for inp in g.inputs.values())


def test_without_them_pretrain_and_transfer_are_skipped_and_nothing_that_runs_needs_them():
    start, skip = run_plan(has_unlabeled=False)
    assert [g.name for g in skip] == ["pretrain", "transfer"]
    assert [g.name for g in start] == ["baseline", "minirocket", "augment"]
    assert all(BY_NAME[inp] in start for g in start for inp in g.inputs.values())
