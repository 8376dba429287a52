"""`make bench`: RoleWarden measured side by side with its peers on a moto server (see bench/run.py)."""
