"""Lambda entry points of the role compliance capability: ``lambda_handler`` for its event queue,
``sweep_handler`` for its sweep queue (scheduled sweeps and their continuations). All logic lives in
the rolewarden layer."""

from rolewarden.runtime import make_handler

lambda_handler = make_handler("role_compliance")
sweep_handler = make_handler("role_compliance", sweep=True)
