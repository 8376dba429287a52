"""The only place RoleWarden calls boto3: a cached client factory, batched reads and single writes."""
