"""Gates 0-5. ``run.run_gate`` is the entry point a GPU pod executes (``moola gate run``)."""

GATES = {"validate": 0, "baseline": 1, "minirocket": 2, "pretrain": 3, "transfer": 4, "augment": 5}
