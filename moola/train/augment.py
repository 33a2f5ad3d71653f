"""Gate 5's train-only augmentation, decided per sample (the original drew once per batch).

Each transform hits each sample independently with probability ``prob``:
jitter (additive noise), scaling (one factor per channel), magnitude warp (a smooth random
curve multiplied in) and time warp (a smooth random re-timing). Inputs are normalised
windows (N, T, C). ``counts`` records how many samples each transform touched.
"""

from __future__ import annotations

from collections import Counter

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field


class AugmentConfig(BaseModel):
    """Gate 5: per-sample augmentation of train batches."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prob: float = Field(0.5, ge=0, le=1, description="chance each transform hits a given sample")
    jitter_sigma: float = 0.05
    scaling_sigma: float = 0.1
    magnitude_warp_sigma: float = 0.2
    time_warp_sigma: float = 0.2
    knots: int = 4



def _smooth_curves(n: int, t: int, knots: int, sigma: float, gen: torch.Generator) -> torch.Tensor:
    """(n, t) curves around 1.0 through ``knots + 2`` random points, linearly interpolated."""
    pts = 1.0 + sigma * torch.randn(n, 1, knots + 2, generator=gen)
    return F.interpolate(pts, size=t, mode="linear", align_corners=True)[:, 0]


class Augmenter:
    def __init__(self, cfg: AugmentConfig):
        self.cfg = cfg
        self.counts: Counter[str] = Counter()
        self.samples_seen = 0

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """x: (B, T, C) train batch on the CPU -> augmented copy."""
        cfg = self.cfg
        b, t, c = x.shape
        x = x.clone()
        self.samples_seen += b

        def pick(name: str) -> torch.Tensor:
            hit = torch.rand(b, generator=gen) < cfg.prob
            self.counts[name] += int(hit.sum())
            return hit

        hit = pick("jitter")
        x[hit] += cfg.jitter_sigma * torch.randn(int(hit.sum()), t, c, generator=gen)
        hit = pick("scaling")
        x[hit] *= 1.0 + cfg.scaling_sigma * torch.randn(int(hit.sum()), 1, c, generator=gen)
        hit = pick("magnitude_warp")
        if hit.any():
            x[hit] *= _smooth_curves(int(hit.sum()), t, cfg.knots, cfg.magnitude_warp_sigma, gen)[:, :, None]
        hit = pick("time_warp")
        if hit.any():
            x[hit] = self._time_warp(x[hit], gen)
        return x

    def _time_warp(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n, t, _ = x.shape
        speed = _smooth_curves(n, t, self.cfg.knots, self.cfg.time_warp_sigma, gen).clamp(min=0.1)
        warped = torch.cumsum(speed, dim=1)
        warped = (warped - warped[:, :1]) / (warped[:, -1:] - warped[:, :1]) * (t - 1)  # (n, t) in [0, t-1]
        lo = warped.floor().long().clamp(0, t - 1)
        hi = (lo + 1).clamp(max=t - 1)
        w = (warped - lo).unsqueeze(-1)
        gather = lambda idx: torch.gather(x, 1, idx.unsqueeze(-1).expand_as(x))  # noqa: E731
        return gather(lo) * (1 - w) + gather(hi) * w

    def report(self) -> dict:
        return {"samples_seen": self.samples_seen, "per_transform": dict(self.counts),
                "prob": self.cfg.prob, "applied_to": "train batches only"}
