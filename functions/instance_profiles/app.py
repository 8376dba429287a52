"""Lambda entry point of the instance profiles capability. All logic lives in the rolewarden layer."""

from rolewarden.runtime import make_handler

lambda_handler = make_handler("instance_profiles")
