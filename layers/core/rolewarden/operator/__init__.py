"""Operator features (explain, history, rollback, validate), used by the CLI."""
