"""How much memory a gate will need for windows of T x C: a pure estimate, checked before training.

The estimate counts the tensors that dominate one training step (activations kept for the
backward pass), in float32:
- the classifier's self-attention scores, batch x heads x T x T, about 3 copies (scores,
  softmax, gradient): quadratic in T, the term that explodes on long windows;
- the BiLSTM's per-step states, batch x T x 2H per layer, about 8 copies (4 gates, cell and
  hidden state, gradients);
- the masked autoencoder's BiLSTM at its own batch (Gate 3, when an unlabelled pool is given);
- the windows themselves, a few copies (raw, normalised, per-fold).
It is a floor, not a bound: the allocator and the framework add to it. Gate 0 refuses data whose
estimate exceeds ``GateConfig.max_memory_gb``, so a gate never dies half-way allocating.
"""

from __future__ import annotations

F32 = 4


def estimate_gate_bytes(n_windows: int, T: int, C: int, cfg, pretrain: bool = False) -> dict[str, int]:
    """{term: bytes} for the gates of ``cfg`` (a resolved GateConfig) on N windows of T x C."""
    b = cfg.fit.batch_size or 16
    H, L, heads = cfg.model.hidden, cfg.model.num_layers, cfg.model.heads
    terms = {
        "attention": b * heads * T * T * F32 * 3,
        "lstm": b * T * 2 * H * L * F32 * 8,
        "windows": n_windows * T * C * F32 * 4,
    }
    if pretrain:
        p = cfg.pretrain
        terms["pretrain_lstm"] = p.batch_size * T * 2 * p.hidden * p.num_layers * F32 * 8
    return terms


def memory_problem(n_windows: int, T: int, C: int, cfg, pretrain: bool = False) -> str | None:
    """One line naming the estimate, the limit and how to raise it, or None when it fits."""
    terms = estimate_gate_bytes(n_windows, T, C, cfg, pretrain)
    need = max(terms["attention"] + terms["lstm"], terms.get("pretrain_lstm", 0)) + terms["windows"]
    limit = cfg.max_memory_gb * 1e9
    if need <= limit:
        return None
    top = max(terms, key=terms.get)
    return (f"windows of T x C = {T} x {C} need about {need / 1e9:,.1f} GB to train (mostly {top}: "
            f"{terms[top] / 1e9:,.1f} GB at batch {cfg.fit.batch_size or 16}); the limit is "
            f"{cfg.max_memory_gb:g} GB: shorten the windows, or raise max_memory_gb in --config if the "
            "machine has that much")
