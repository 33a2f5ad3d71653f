"""Re-validation of the production model on the latest data (the nightly ``gates/revalidate``).

``evaluate_on_latest`` runs Gate 0 on the data and scores the model on the last fold's
validation windows, next to the majority class of that fold's train windows.
``revalidation_verdict`` is pure: the model is healthy unless it is degenerate there or its
weighted F1 fell more than the policy allows below the F1 recorded when it shipped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .decision import Policy, Rule
from .errors import DataError


@dataclass
class Revalidation:
    healthy: bool
    reasons: list[str]
    rules: list[Rule] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"healthy": self.healthy, "reasons": self.reasons, "rules": [r.__dict__ for r in self.rules]}


def revalidation_verdict(recorded: dict, now: dict, degenerate: bool, degenerate_reasons: list[str],
                         policy: Policy | None = None) -> Revalidation:
    """``recorded``/``now``: metrics dicts (``f1_weighted`` at least) at ship time and today."""
    p = policy or Policy()
    f1, rf1 = now["f1_weighted"], recorded.get("f1_weighted")
    rules = [Rule("not degenerate on the latest validation fold", not degenerate,
                  "; ".join(degenerate_reasons) or "predicts more than one class and beats the majority class")]
    if rf1 is not None:
        rules.append(Rule(f"F1 at most {p.revalidate_f1_drop} below the recorded F1", f1 >= rf1 - p.revalidate_f1_drop,
                          f"{f1:.3f} now vs {rf1:.3f} recorded"))
    failed = [f"{r.name}: failed ({r.detail})" for r in rules if not r.passed]
    if failed:
        return Revalidation(False, failed, rules)
    return Revalidation(True, [f"healthy: F1 {f1:.3f}" + (f" (recorded {rf1:.3f})" if rf1 is not None else "")], rules)


def evaluate_on_latest(folder: Path, data: Path, data_config=None, device: str = "cpu",
                       expected_manifest_sha256: str | None = None) -> dict:
    """The model in ``folder`` scored on the latest validation fold of ``data``.

    Raises DataError (one line per problem) when the data fails Gate 0 or does not fit the model.
    """
    from .data.validate import DataConfig, validate
    from .inference import predict_windows
    from .metrics import evaluate_predictions
    rep = validate(data, None, data_config or DataConfig())
    rep.raise_if_invalid()
    lab, fold = rep.labeled, rep.split
    proba, classes = predict_windows(folder, lab.X[fold.val], str(data), device, expected_manifest_sha256)
    unknown = sorted(set(lab.labels.tolist()) - set(classes))
    if unknown:
        raise DataError(f"{data}: column 'label': class(es) {', '.join(map(repr, unknown))} unknown to the "
                        f"model (it knows {', '.join(classes)})")
    positive = None
    result = folder / "result.json"
    if result.is_file():
        pc = (json.loads(result.read_text()).get("data") or {}).get("positive_class")
        positive = classes.index(pc) if pc in classes else None
    y_val, y_train = lab.labels[fold.val].tolist(), lab.labels[fold.train].tolist()
    _, m, maj, degenerate, reasons = evaluate_predictions(y_val, y_train, proba, classes, positive)
    return {"metrics": m, "majority_baseline": maj, "degenerate": degenerate, "degenerate_reasons": reasons,
            "val_windows": len(y_val), "train_windows": len(y_train)}
