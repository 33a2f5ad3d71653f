"""Gate 3's BiLSTM masked autoencoder: patch masking, MSE on masked positions only."""

from __future__ import annotations

import torch
from torch import nn

from ..config import PretrainConfig


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
