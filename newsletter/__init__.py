"""Compose and send e-newsletters: Markdown issues, sponsor credits, curated lists.

The package is laid out as the pipeline: ``compose`` (issue → HTML and text),
``audience`` (lists, people, consent), ``dispatch`` (campaigns, the outbox, workers),
``delivery`` (MIME, SMTP, DKIM), and on top ``web`` and ``cli``. At the root is what
every stage stands on: ``settings``, ``db``, ``models``, ``errors``, ``users`` and the
Alembic ``migrations``. Imports run one way: cli → web → dispatch → compose, audience,
delivery → root (``tests/test_layout.py`` keeps it so).
"""
