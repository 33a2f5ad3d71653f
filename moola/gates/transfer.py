"""Gate 4: a classifier layer-matched to the pretrained encoder (depth, width, input stride
and gain taken from it), the encoder loaded under the load proof, then fine-tuned with the
baseline's recipe (frozen first for ``transfer.freeze_frac`` of the epochs; default none)."""

from __future__ import annotations

import json
from pathlib import Path

from moola.core.errors import ConfigError
from moola.core.seal import MANIFEST, verify_folder
from moola.gates.classifier import classifier_gate
from moola.gates.context import Context
from moola.gates.result import GateResult
from moola.models.files import load_weights


def gate_transfer(ctx: Context, folders: dict) -> GateResult:
    enc_dir = folders.get("encoder")
    if enc_dir is None:
        raise ConfigError("gate transfer needs --encoder DIR (the output folder of gate pretrain)")
    enc_dir = Path(enc_dir)
    if (enc_dir / MANIFEST).is_file():
        verify_folder(enc_dir)
    enc_cfg = json.loads((enc_dir / "encoder.json").read_text())
    state = load_weights(enc_dir / "encoder.safetensors")
    model_cfg = ctx.cfg.model.model_copy(update={"num_layers": enc_cfg["num_layers"], "hidden": enc_cfg["hidden"],
                                                  "stride": enc_cfg.get("stride", 1),
                                                  "input_gain": enc_cfg.get("input_gain", 1.0)})
    return classifier_gate(ctx, "transfer", model_cfg, baseline=folders.get("baseline"), encoder=state)
