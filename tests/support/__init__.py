"""Real servers for the tests and benchmarks: an SMTP sink, Redis, PostgreSQL databases."""
