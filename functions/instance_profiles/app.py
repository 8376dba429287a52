"""Lambda entry points of the instance profiles capability: ``lambda_handler`` for its event queue,
``sweep_handler`` for its sweep queue (scheduled sweeps and their continuations). All logic lives in
the rolewarden layer."""

from rolewarden.runtime import make_handler

lambda_handler = make_handler("instance_profiles")
sweep_handler = make_handler("instance_profiles", sweep=True)
