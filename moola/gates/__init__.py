"""Gates 0-5, one module each (validate, baseline, minirocket, pretrain, transfer, augment); their
shared context in context.py, pure verdicts in verdicts.py, ``run.run_gate`` the entry point a GPU
pod executes (``moola gate run``). The gate table: graph.py."""

