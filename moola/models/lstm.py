"""EnhancedSimpleLSTM: the seed's classifier, for any T, C and number of classes."""

from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig


class EnhancedSimpleLSTM(nn.Module):
    """BiLSTM -> multi-head self-attention -> residual + LayerNorm -> pooling -> MLP head.

    The LSTM lives at ``self.lstm`` with PyTorch's own parameter names, so an encoder saved by
    the masked autoencoder (same names) loads into it tensor for tensor.
    """

    def __init__(self, n_channels: int, n_classes: int, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        width = 2 * cfg.hidden
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
        h, _ = self.lstm(x)                   # (N, T, C) -> (N, T, 2H)
        a, _ = self.attn(h, h, h, need_weights=False)
        h = self.norm(h + a)                  # residual + LayerNorm
        z = h.mean(dim=1) if self.cfg.pooling == "mean" else h[:, -1]  # (N, 2H)
        return self.head(z)                   # (N, n_classes) logits
