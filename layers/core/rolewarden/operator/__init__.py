"""Operator features used by the CLI (explain, validate; history and rollback to come): they read the
account and reuse the capabilities' observe and decide parts, and write nothing themselves."""
