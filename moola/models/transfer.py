"""The encoder-scope load proof for Gate 4.

The original divided matched tensors by *all* model tensors (head included), so its
threshold drifted from 0.80 to 0.20, and it silently ignored checkpoint keys it could not
place (a 1-layer classifier dropped the encoder's layer 2). Here the ratio is
matched / encoder tensors of the model, and any shape mismatch or unexpected checkpoint key
fails the proof outright.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn


@dataclass
class EncoderMatchReport:
    encoder_tensors: int
    matched: int
    shape_mismatches: list[str] = field(default_factory=list)
    unexpected_keys: list[str] = field(default_factory=list)
    missing_keys: list[str] = field(default_factory=list)
    min_ratio: float = 0.80

    @property
    def ratio(self) -> float:
        return self.matched / self.encoder_tensors if self.encoder_tensors else 0.0

    @property
    def passed(self) -> bool:
        return self.ratio >= self.min_ratio and not self.shape_mismatches and not self.unexpected_keys

    def reasons(self) -> list[str]:
        out = []
        if self.ratio < self.min_ratio:
            out.append(f"encoder match {self.matched}/{self.encoder_tensors} = {self.ratio:.2f} "
                       f"< {self.min_ratio:.2f}")
        if self.shape_mismatches:
            out.append(f"{len(self.shape_mismatches)} shape mismatches: {', '.join(self.shape_mismatches[:4])}")
        if self.unexpected_keys:
            out.append(f"{len(self.unexpected_keys)} unexpected checkpoint keys (the model has no place for "
                       f"them, e.g. a layer count mismatch): {', '.join(self.unexpected_keys[:4])}")
        return out

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(ratio=self.ratio, passed=self.passed)
        return d


def encoder_match_report(model: nn.Module, encoder_scope: list[str], checkpoint: dict[str, torch.Tensor],
                         min_ratio: float = 0.80) -> EncoderMatchReport:
    """Compare a checkpoint to the model's encoder scope without loading anything."""
    state = model.state_dict()
    scope = set(encoder_scope)
    rep = EncoderMatchReport(encoder_tensors=len(scope), matched=0, min_ratio=min_ratio)
    for key, tensor in checkpoint.items():
        if key not in scope:
            rep.unexpected_keys.append(key)
        elif tuple(state[key].shape) != tuple(tensor.shape):
            rep.shape_mismatches.append(f"{key} {tuple(tensor.shape)} vs {tuple(state[key].shape)}")
        else:
            rep.matched += 1
    rep.missing_keys = sorted(scope - set(checkpoint))
    return rep


def load_encoder(model: nn.Module, encoder_scope: list[str], checkpoint: dict[str, torch.Tensor],
                 min_ratio: float = 0.80) -> EncoderMatchReport:
    """Load the checkpoint into the model's encoder scope if, and only if, the proof passes."""
    rep = encoder_match_report(model, encoder_scope, checkpoint, min_ratio)
    if rep.passed:
        model.load_state_dict(checkpoint, strict=False)
    return rep
