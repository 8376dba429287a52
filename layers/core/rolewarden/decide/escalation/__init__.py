"""The escalation-path table of the ``no-privilege-escalation`` rule: the path types (``path``), the table as
data (``paths.json``) and its loader, which checks it and keeps it in order (``catalog``)."""
