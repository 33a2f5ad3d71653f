"""EnhancedSimpleLSTM: the seed's classifier, for any T, C and number of classes."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig


def lstm_input(x: torch.Tensor, stride: int, gain: float) -> torch.Tensor:
    """(N, T, C) -> (N, ceil(T / stride), C): every ``stride`` consecutive steps averaged (the
    last group may be shorter), times ``gain``. The classifier and Gate 3's encoder both see
    this, so a pretrained encoder meets the input it was trained on."""
    if stride > 1:
        x = F.avg_pool1d(x.transpose(1, 2), stride, stride, ceil_mode=True).transpose(1, 2)
    return x * gain if gain != 1.0 else x


def pool_time(h: torch.Tensor, how: str) -> torch.Tensor:
    """(N, T, D) -> (N, D)."""
    if how == "mean":
        return h.mean(dim=1)
    if how == "max":
        return h.amax(dim=1)
    return h[:, -1]


class EnhancedSimpleLSTM(nn.Module):
    """BiLSTM -> multi-head self-attention -> residual + LayerNorm -> pooling -> MLP head, on the
    input averaged over ``cfg.stride`` steps.

    The LSTM lives at ``self.lstm`` with PyTorch's own parameter names, so an encoder saved by
    the masked autoencoder (same names) loads into it tensor for tensor.
    """

    def __init__(self, n_channels: int, n_classes: int, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        width = 2 * cfg.hidden
        self.stride = cfg.stride or 1  # None: not resolved for a T (a model built directly): every step
        self.lstm = nn.LSTM(n_channels, cfg.hidden, num_layers=cfg.num_layers, batch_first=True,
                            bidirectional=True, dropout=cfg.dropout if cfg.num_layers > 1 else 0.0)
        self.attn = nn.MultiheadAttention(width, cfg.heads, dropout=cfg.dropout, batch_first=True)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Sequential(nn.Linear(width, 32), nn.ReLU(), nn.Dropout(cfg.dropout),
                                  nn.Linear(32, n_classes))

    def encoder_parameter_names(self) -> list[str]:
        """The encoder scope for the load proof: every tensor of the LSTM."""
        return [f"lstm.{k}" for k in self.lstm.state_dict()]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = lstm_input(x, self.stride, self.cfg.input_gain)  # (N, T, C) -> (N, ceil(T / stride), C)
        h, _ = self.lstm(x)                   # -> (N, T', 2H)
        a, _ = self.attn(h, h, h, need_weights=False)
        h = self.norm(h + a)                  # residual + LayerNorm
        z = pool_time(h, self.cfg.pooling)    # (N, 2H)
        return self.head(z)                   # (N, n_classes) logits
