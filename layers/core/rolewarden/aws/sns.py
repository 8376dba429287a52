"""SNS: findings and remediations of one invocation, published as one message (split under 256 KB)."""

from __future__ import annotations

import json
from typing import Any

from rolewarden.aws.clients import client

_MAX_BYTES = 200_000


def publish_findings(topic_arn: str, capability: str, findings: list[dict[str, Any]], trigger: str) -> int:
    """Publish ``findings``; returns the number of messages sent."""
    chunks: list[list[dict[str, Any]]] = [[]]
    size = 0
    for finding in findings:
        encoded = len(json.dumps(finding, default=str))
        if chunks[-1] and size + encoded > _MAX_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(finding)
        size += encoded
    for chunk in chunks:
        rules = sorted({f.get("rule", "") for f in chunk})
        client("sns").publish(
            TopicArn=topic_arn,
            Subject=f"RoleWarden {capability}: {len(chunk)} finding(s)"[:99],
            Message=json.dumps(
                {"capability": capability, "trigger": trigger, "rules": rules, "findings": chunk}, default=str, indent=1
            ),
        )
    return len(chunks)
