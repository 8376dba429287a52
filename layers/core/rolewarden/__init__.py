"""RoleWarden: IAM for EC2 that runs itself.

Observe -> decide -> apply: ``rolewarden.aws`` reads and writes AWS (the only place boto3 is
used), ``rolewarden.decide`` holds pure decision functions, ``rolewarden.model`` the shared data
(observed state, targets, findings, actions) and ``rolewarden.aws.executor`` the executor.
"""

__version__ = "0.1.0"
