"""The ``moola`` command: parsers and handlers (main), the registry subcommands (registry)."""
