"""Operator features used by the CLI: explain, history, rollback, validate."""
