"""Delivery: build MIME messages (with DKIM) and hand them to SMTP, a folder or memory.

Knows nothing of the database, campaigns or subscribers: values in, bytes out, and
every transport error mapped to retry, give up or uncertain. May import the root
modules only.
"""
