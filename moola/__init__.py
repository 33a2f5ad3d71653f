"""moola: train, gate and ship small time-series classifiers, honestly."""

__version__ = "0.1.0"
