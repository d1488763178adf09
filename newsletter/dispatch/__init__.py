"""Dispatch: campaigns, the outbox, and the workers that claim rows and send them.

The database is the record of truth: every recipient has an outbox row before anything
is sent, and every outcome is written back to it; Redis (through Celery) only carries
row ids. May import compose, audience, delivery and the root modules; never web or cli.
"""
