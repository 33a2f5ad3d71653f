"""What every layer uses, in the standard library only: the exception tree and exit codes (errors),
atomic writes and sha256 (files), sealed folders (seal), the code version (version)."""
