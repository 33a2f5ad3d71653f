"""Training: the one loop and its settings (fit), input normalisation (normalize), train-only
augmentation (augment), the memory estimate Gate 0 checks (memory), CPU core claims (cores)."""
