"""Data: the window contract (schema), loading, forward-chaining splits, Gate 0, sample data."""
