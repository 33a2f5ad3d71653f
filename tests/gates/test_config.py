"""The budget each device gets: what resolve_budget fills in is what result.json records."""

from __future__ import annotations

from moola.gates.config import load_gate_config, resolve_budget
from moola.models.lstm import CPU_HIDDEN, GPU_HIDDEN


def test_cpu_and_gpu_budgets_fill_width_epochs_and_a_learning_rate_that_suits_the_width():
    cfg = load_gate_config("default")
    cpu, gpu = resolve_budget(cfg, "cpu"), resolve_budget(cfg, "cuda")
    assert (cpu.model.hidden, cpu.fit.epochs, cpu.fit.lr) == (CPU_HIDDEN, 60, 5e-3)
    # 128 units at 5e-3 collapsed on GunPoint (2 seeds of 3); at 2e-3 they reach 0.998
    assert (gpu.model.hidden, gpu.fit.epochs, gpu.fit.lr) == (GPU_HIDDEN, 150, 2e-3)
    assert (cpu.pretrain.hidden, gpu.pretrain.hidden) == (CPU_HIDDEN, GPU_HIDDEN)


def test_explicit_settings_win_over_the_budget():
    cfg = load_gate_config("default").model_copy(deep=True)
    cfg = cfg.model_copy(update={"fit": cfg.fit.model_copy(update={"lr": 1e-3}),
                                 "model": cfg.model.model_copy(update={"hidden": 128})})
    out = resolve_budget(cfg, "cpu")
    assert (out.model.hidden, out.fit.lr) == (128, 1e-3)
    assert resolve_budget(load_gate_config("default").model_copy(
        update={"model": cfg.model}), "cpu").fit.lr == 2e-3  # 128 units on a CPU: the wide rate
