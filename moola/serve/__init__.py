"""Serving: load a sealed classifier and predict (inference); the fresh-process check that a folder
serves what its gate measured (check)."""
