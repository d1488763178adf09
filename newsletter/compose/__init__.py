"""Compose: an issue file (YAML front matter + Markdown) becomes HTML and text, once.

Reads only the issue, template and sponsor files it is given; rendering itself does no
I/O. Knows nothing of subscribers, campaigns or mail transport: per-recipient values are
placeholders filled later. May import the root modules only.
"""
