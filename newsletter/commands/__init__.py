"""Command-line commands, one module per area; each module has ``register(group)``."""
