"""Lambda entry point of the bucket grants capability. All logic lives in the rolewarden layer."""

from rolewarden.runtime import make_handler

lambda_handler = make_handler("bucket_grants")
