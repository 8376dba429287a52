"""IAM writes of the role-compliance capability: the remediation executors, the remediation lease and
the grant-drift report to the grants queue (reads go through ``rolewarden.aws.iam_snapshot``)."""
