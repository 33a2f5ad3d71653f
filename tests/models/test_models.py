"""Models and the one fit loop on toy data: shapes, the load proof, loss falls, augmentation
never touches validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from moola.models.autoencoder import MaskedAutoencoder, PretrainConfig, masked_mse, patch_mask
from moola.models.lstm import EnhancedSimpleLSTM, ModelConfig
from moola.models.transfer import encoder_match_report, load_encoder
from moola.train.augment import AugmentConfig, Augmenter
from moola.train.fit import FitConfig, fit, predict_proba


@pytest.mark.parametrize("t,c,k", [(9, 1, 2), (105, 4, 2), (30, 3, 5)])
def test_classifier_any_shape(t, c, k):
    m = EnhancedSimpleLSTM(c, k, ModelConfig(hidden=16))
    assert m(torch.randn(3, t, c)).shape == (3, k)


def encoder_state(layers: int, hidden: int = 16, c: int = 4) -> dict:
    ae = MaskedAutoencoder(c, PretrainConfig(hidden=hidden, num_layers=layers))
    return {f"lstm.{k}": v for k, v in ae.lstm.state_dict().items()}


def test_load_proof_layer_matched_passes_and_loads():
    model = EnhancedSimpleLSTM(4, 2, ModelConfig(hidden=16, num_layers=2))
    state = encoder_state(2)
    rep = load_encoder(model, model.encoder_parameter_names(), state)
    assert (rep.matched, rep.encoder_tensors, rep.ratio, rep.passed) == (16, 16, 1.0, True)
    assert torch.equal(model.lstm.weight_hh_l1, state["lstm.weight_hh_l1"])


def test_load_proof_catches_the_original_layer_mismatch():
    # the seed: a 1-layer classifier silently dropped layer 2 of a 2-layer encoder
    model = EnhancedSimpleLSTM(4, 2, ModelConfig(hidden=16, num_layers=1))
    before = model.lstm.weight_hh_l0.clone()
    rep = load_encoder(model, model.encoder_parameter_names(), encoder_state(2))
    assert rep.matched == 8 and rep.encoder_tensors == 8 and len(rep.unexpected_keys) == 8
    assert not rep.passed and "unexpected checkpoint keys" in " ".join(rep.reasons())
    assert torch.equal(model.lstm.weight_hh_l0, before)  # nothing was loaded


def test_load_proof_catches_shape_mismatch_and_low_ratio():
    model = EnhancedSimpleLSTM(4, 2, ModelConfig(hidden=32, num_layers=2))
    rep = encoder_match_report(model, model.encoder_parameter_names(), encoder_state(2, hidden=16))
    assert rep.matched == 0 and len(rep.shape_mismatches) == 16 and not rep.passed
    partial = {k: v for k, v in list(encoder_state(2).items())[:10]}
    model = EnhancedSimpleLSTM(4, 2, ModelConfig(hidden=16, num_layers=2))
    rep = encoder_match_report(model, model.encoder_parameter_names(), partial)
    assert rep.ratio == pytest.approx(10 / 16) and not rep.passed and len(rep.missing_keys) == 6


def test_patch_mask_ratio_and_patches():
    m = patch_mask(4, 105, 0.15, 7, torch.Generator().manual_seed(0))
    assert m.shape == (4, 105)
    assert (m.sum(dim=1) == 2 * 7).all()  # round(0.15 * 15 patches) = 2 patches of 7
    runs = m[0].int().diff().abs().sum()
    assert runs <= 4


def toy_set(n=80, t=20, seed=0):
    """Class 1 has a bump in the middle; class 0 is noise."""
    g = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = g.normal(0, 1, (n, t, 2))
    X[y == 1, t // 3: 2 * t // 3, :] += 1.5
    return torch.tensor(X, dtype=torch.float32), torch.tensor(y)


def test_fit_loss_falls_and_beats_majority_on_a_learnable_toy_set():
    X, y = toy_set()
    model = EnhancedSimpleLSTM(2, 2, ModelConfig(hidden=16))
    plan = FitConfig(epochs=25, batch_size=16, lr=3e-3, inner_val_frac=0.0, min_epochs_frac=0.0)
    res = fit(model, X[:60], y[:60], lambda m, xb, yb: F.cross_entropy(m(xb), yb), plan, 0, torch.device("cpu"))
    assert res.history[-1]["train_loss"] < 0.5 * res.history[0]["train_loss"]
    acc = (predict_proba(model, X[60:], torch.device("cpu")).argmax(1) == y[60:]).float().mean()
    assert acc >= 0.85  # majority is 0.5


def test_fit_is_deterministic_on_cpu():
    X, y = toy_set(n=40)
    outs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = EnhancedSimpleLSTM(2, 2, ModelConfig(hidden=8))
        fit(model, X, y, lambda m, xb, yb: F.cross_entropy(m(xb), yb),
            FitConfig(epochs=3, batch_size=8, lr=1e-3, min_epochs_frac=0.0), 3, torch.device("cpu"))
        outs.append(predict_proba(model, X, torch.device("cpu")))
    assert torch.equal(outs[0], outs[1])


def test_early_stopping_uses_the_latest_train_rows_and_augmentation_sees_only_train():
    X, y = toy_set(n=40)
    marker = torch.arange(40, dtype=torch.float32)
    X[:, 0, 0] = marker  # row identity rides in the first value
    seen: set[int] = set()
    aug = Augmenter(AugmentConfig(prob=1.0))

    def spy(xb, gen):
        seen.update(int(v) for v in xb[:, 0, 0])
        return aug(xb, gen)

    model = EnhancedSimpleLSTM(2, 2, ModelConfig(hidden=8))
    res = fit(model, X, y, lambda m, xb, yb: F.cross_entropy(m(xb), yb),
              FitConfig(epochs=4, batch_size=8, lr=1e-3, inner_val_frac=0.25, min_epochs_frac=0.0), 0, torch.device("cpu"),
              augment=spy)
    assert res.inner_val_size == 10
    assert seen == set(range(30))  # the last 10 rows (the inner validation) are never augmented
    assert aug.samples_seen == 30 * 4 and aug.counts["jitter"] == 120


def test_augmenter_is_per_sample_and_leaves_input_alone():
    x = torch.ones(200, 30, 4)
    aug = Augmenter(AugmentConfig(prob=0.5, magnitude_warp_sigma=0, time_warp_sigma=0, scaling_sigma=0))
    out = aug(x, torch.Generator().manual_seed(0))
    changed = (out != 1).flatten(1).any(dim=1)
    assert 60 < int(changed.sum()) < 140  # some samples jittered, others not: decided per sample
    assert torch.equal(x, torch.ones(200, 30, 4))


def test_masked_mse_counts_only_masked_positions():
    x = torch.zeros(1, 4, 1)
    recon = torch.tensor([[[1.0], [2.0], [0.0], [0.0]]])
    mask = torch.tensor([[True, False, False, False]])
    assert float(masked_mse(recon, x, mask)) == 1.0


def test_lstm_input_averages_groups_of_stride_steps_and_applies_the_gain():
    from moola.models.lstm import lstm_input
    x = torch.arange(10.0).reshape(1, 10, 1)
    assert lstm_input(x, 3, 1.0).flatten().tolist() == [1.0, 4.0, 7.0, 9.0]  # the last group holds one step
    assert lstm_input(x, 1, 2.0).flatten().tolist() == (2 * x).flatten().tolist()


def test_auto_stride_leaves_at_most_max_lstm_steps():
    from moola.models.lstm import MAX_LSTM_STEPS, auto_stride
    assert auto_stride(24) == 1 and auto_stride(MAX_LSTM_STEPS) == 1
    assert auto_stride(105) == 2 and auto_stride(150) == 3 and auto_stride(251) == 4
    assert auto_stride(150, stride=1) == 1
    assert all(-(-t // auto_stride(t)) <= MAX_LSTM_STEPS for t in range(1, 2000))


def test_a_model_saved_before_stride_and_gain_loads_as_it_was_trained(tmp_path):
    """model.json written before these settings existed: every step, no gain (LEGACY_MODEL)."""
    from moola.core.seal import write_manifest
    from moola.models.files import save_torch
    from moola.serve.inference import load_classifier
    old = EnhancedSimpleLSTM(4, 2, ModelConfig(hidden=8, pooling="mean", stride=1, input_gain=1.0))
    cfg = {"kind": "EnhancedSimpleLSTM", "model": {"hidden": 8, "num_layers": 1, "heads": 2, "dropout": 0.1,
                                                   "pooling": "mean"},
           "n_channels": 4, "classes": ["a", "b"], "normalizer": {"method": "ohlc", "scale": 1.0}, "T": 20}
    save_torch(old, tmp_path, "model", cfg)
    write_manifest(tmp_path)
    model, _ = load_classifier(tmp_path)
    x = torch.randn(3, 20, 4)
    old.eval()
    assert model.stride == 1 and model.cfg.input_gain == 1.0
    assert torch.allclose(model.eval()(x), old(x))


def test_average_last_frac_ends_on_the_mean_of_the_last_epochs_weights():
    X, y = toy_set(n=40)
    loss = lambda m, xb, yb: F.cross_entropy(m(xb), yb)  # noqa: E731
    ends: dict[int, dict] = {}

    def keep(epoch, m):  # the weights at the start of an epoch are the previous epoch's end
        ends[epoch - 1] = {k: v.clone() for k, v in m.state_dict().items()}

    def run(frac, hook=None):
        torch.manual_seed(0)
        model = EnhancedSimpleLSTM(2, 2, ModelConfig(hidden=8))
        fit(model, X, y, loss, FitConfig(epochs=4, batch_size=8, lr=1e-3, average_last_frac=frac), 3,
            torch.device("cpu"), on_epoch_start=hook)
        return model.state_dict()

    last = run(0.0, keep)
    averaged = run(0.5)
    for k, v in averaged.items():
        assert torch.allclose(v, (ends[3][k] + last[k]) / 2, atol=1e-6), k
    assert not torch.allclose(averaged["head.3.weight"], last["head.3.weight"])
