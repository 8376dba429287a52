"""Role compliance, PURE (no boto3, no os.environ, no clock): the rule framework (``rule``), one module per
rule or small group of rules, the declared registry (``registry``), judging a role (``judge``), planning
the remedies (``remedies``) and rollback (``rollback``). The action types are ``rolewarden.model.compliance``;
the policy grammar is ``rolewarden.decide.policy``."""
