"""RoleWarden: IAM for EC2 that runs itself.

Observe -> decide -> apply: ``rolewarden.aws`` reads and writes AWS (the only place boto3 is
used), ``rolewarden.decide`` holds pure decision functions, ``rolewarden.plan`` the actions and
``rolewarden.apply`` the executor.
"""

__version__ = "0.1.0"
