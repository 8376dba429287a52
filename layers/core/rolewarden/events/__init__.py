"""Typed event models: one small frozen dataclass per event shape RoleWarden routes, one module per family
of sources, so that a function loads only the models of the events it receives (``rolewarden.triggers``
imports a route's module when the route first parses an event):

* ``events.fields``: the field checks every model uses, and ``cloudtrail_request``;
* ``events.ec2``: EC2 and Auto Scaling (the instance-profiles function);
* ``events.s3``: S3 buckets (the bucket-grants function);
* ``events.iam``: IAM calls on roles, policies and instance profiles;
* ``events.own``: the scheduled sweep and RoleWarden's own events (grant-policy drift).

Each model's ``from_envelope(env)`` validates the fields its route needs and raises ``MalformedEvent``
naming the field (``detail.requestParameters.roleName ...``); it returns None when the event is well formed
but concerns nothing RoleWarden manages (a failed CloudTrail call, a test notification, another service's
tags). Plain dataclasses, no pydantic and no Powertools data classes: parsing stays cheap at cold start.
"""
