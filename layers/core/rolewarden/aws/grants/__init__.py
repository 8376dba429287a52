"""Bucket grants, the boto3 side: reads (S3 buckets, the IAM snapshot), the executors of the grant
actions, and RoleWarden's own record of grants in the state table."""
