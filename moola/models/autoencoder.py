"""Gate 3's BiLSTM masked autoencoder: patch masking, MSE on masked positions only."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn


class PretrainConfig(BaseModel):
    """Gate 3: BiLSTM masked autoencoder."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hidden: int | None = Field(None, gt=0, description="None: the classifier's width (transfer is layer-matched)")
    stride: int | None = Field(None, ge=1, description="None: the classifier's (transfer sees the same input steps)")
    num_layers: int = Field(1, ge=1, description=(
        "the transfer classifier takes this depth; 1 = the baseline's, so Gate 4 differs from Gate 1 only "
        "by the pretrained start (a 2-layer encoder cost GunPoint 0.22 F1, bench/RESULTS.md)"))
    dropout: float = 0.2
    mask_ratio: float = Field(0.15, gt=0, lt=1)
    patch: int = Field(7, ge=1)
    epochs: int | None = Field(None, ge=1, description="None: 3 on CPU, 50 on GPU")
    batch_size: int = 512
    lr: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 10
    warmup_frac: float = Field(0.05, ge=0, lt=1, description="share of steps with linear warm-up")
    schedule: Literal["cosine", "constant"] = "cosine"
    clip: float | None = Field(1.0, gt=0, description="gradient-norm clipping")
    inner_val_frac: float = Field(0.1, ge=0, lt=0.5, description="latest share of the pool for early stopping "
                                  "(0 when the pool has fewer than 20 windows)")
    min_epochs_frac: float = Field(0.0, ge=0, le=1, description="share of epochs always trained")
    amp: Literal["auto", "on", "off"] = "auto"
    max_windows_cpu: int | None = Field(1000, description="cap on the pool when training on CPU")



class MaskedAutoencoder(nn.Module):
    """Learnable mask token -> BiLSTM encoder -> LayerNorm -> MLP decoder back to C channels.

    The encoder LSTM sits at ``self.lstm`` so its state dict has the classifier's names.
    """

    def __init__(self, n_channels: int, cfg: PretrainConfig):
        super().__init__()
        self.cfg = cfg
        self.mask_token = nn.Parameter(torch.zeros(n_channels))
        self.lstm = nn.LSTM(n_channels, cfg.hidden, num_layers=cfg.num_layers, batch_first=True,
                            bidirectional=True, dropout=cfg.dropout if cfg.num_layers > 1 else 0.0)
        self.norm = nn.LayerNorm(2 * cfg.hidden)
        self.decoder = nn.Sequential(nn.Linear(2 * cfg.hidden, 128), nn.ReLU(), nn.Linear(128, n_channels))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm(x)          # (N, T, C) -> (N, T, 2H)
        return self.norm(h)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``mask`` (N, T) bool: True where the input is hidden behind the mask token."""
        x = torch.where(mask.unsqueeze(-1), self.mask_token.to(x.dtype), x)
        return self.decoder(self.encode(x))   # (N, T, C) reconstruction


def patch_mask(n: int, t: int, ratio: float, patch: int, generator: torch.Generator,
               device: torch.device | str = "cpu") -> torch.Tensor:
    """(n, t) bool mask hiding round(ratio * patches) random patches of ``patch`` steps per row."""
    n_patches = max(1, t // patch)
    k = max(1, round(ratio * n_patches))
    scores = torch.rand(n, n_patches, generator=generator)
    chosen = scores.argsort(dim=1)[:, :k]                       # (n, k) patch indices
    patch_mask_ = torch.zeros(n, n_patches, dtype=torch.bool)
    patch_mask_.scatter_(1, chosen, True)
    mask = patch_mask_.repeat_interleave(patch, dim=1)           # (n, n_patches * patch)
    if mask.shape[1] < t:  # the tail shorter than a patch is never masked
        mask = torch.cat([mask, torch.zeros(n, t - mask.shape[1], dtype=torch.bool)], dim=1)
    return mask.to(device)


def masked_mse(recon: torch.Tensor, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    err = ((recon.float() - x.float()) ** 2).mean(dim=-1)       # (N, T)
    return (err * mask).sum() / mask.sum().clamp(min=1)
