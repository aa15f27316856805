"""Subcommands of the ``dgsamp`` CLI: each module exposes ``register(subparsers)``."""
