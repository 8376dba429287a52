"""The escalation-path table of the ``no-privilege-escalation`` rule, as data: the path types
(``path``), one data module per category group, and the assembled table (``catalog``)."""
