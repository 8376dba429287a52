"""Lambda entry point of the role compliance capability. All logic lives in the rolewarden layer."""

from rolewarden.runtime import make_handler

lambda_handler = make_handler("role_compliance")
