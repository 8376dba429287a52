"""Bucket grants, the pure side: catalog (S3 actions and levels), tags (bucket tags -> grants),
render (documents, sizing, packing, read-back), naming (policy names and owners), decide (one role's
decision) and plan (the decision for a set of targets from one snapshot)."""
