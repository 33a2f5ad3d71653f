"""Scoring: metrics of one model's predictions (metrics), paired statistics of two models on the
same windows (stats), and the sequential test behind nightly re-validation (sequential)."""
