"""The registry: versions, the production pointer, history and its lock (store)."""
