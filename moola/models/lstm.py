"""EnhancedSimpleLSTM: the seed's classifier, for any T, C and number of classes."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn


class ModelConfig(BaseModel):
    """EnhancedSimpleLSTM: BiLSTM -> attention -> residual + LayerNorm -> pooling -> MLP head."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hidden: int | None = Field(None, gt=0, description="LSTM units per direction; None: 32 on CPU, 128 on GPU")
    num_layers: int = Field(1, ge=1)
    heads: int = Field(2, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    pooling: Literal["mean", "max", "last"] = Field("max", description=(
        "max or mean over time, or the last step; max: GunPoint 0.97 vs 0.90 with mean (bench/RESULTS.md)"))
    input_gain: float = Field(3.0, gt=0, description=(
        "factor on the per-window normalised input before the LSTM: unit-variance inputs barely move "
        "the LSTM's gates at PyTorch's initialisation, and the model sat at the majority class for tens "
        "of epochs (bench/RESULTS.md, 'Baseline recipe')"))
    stride: int | None = Field(None, ge=1, description=(
        "average the input over this many consecutive steps before the LSTM; None: "
        "auto_stride(T), the smallest that leaves at most MAX_LSTM_STEPS steps"))


# CPU widths: on the sample data (3 folds of 20 windows, seeds 1-3) a 32-unit BiLSTM trained
# 3x faster than a 128-unit one and scored no worse (bench/RESULTS.md, "CPU width"); the
# 128-unit model is the seed's and stays the GPU default.
CPU_HIDDEN, GPU_HIDDEN = 32, 128
MAX_LSTM_STEPS = 64


def auto_stride(t: int, stride: int | None = None) -> int:
    """The input stride for windows of ``t`` steps: ``stride`` when set, else the smallest that
    leaves at most MAX_LSTM_STEPS steps for the LSTM. Why: the recurrent model's cost grows
    with T and long windows keep it at the majority class for tens of epochs (bench/RESULTS.md,
    "Baseline recipe")."""
    return stride or max(1, -(-t // MAX_LSTM_STEPS))



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
