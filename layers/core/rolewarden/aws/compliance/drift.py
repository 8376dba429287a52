"""Grant-policy drift, reported to the grants capability: one message per drifted role on the grants
queue, shaped as an EventBridge event so the grants function routes it like any other event.

Body: ``{"version": "0", "id": <uuid>, "source": "rolewarden.compliance", "detail-type": "Grant Policy
Drift", "account", "region", "time" (ISO, Z), "resources": [], "detail": {"roleName", "policyArn",
"reason"}}``. Compliance itself writes no grant policy: the grants capability re-publishes the role's
grants from its state table.
"""

from __future__ import annotations

import datetime
import json
import uuid

from rolewarden.aws import sqs
from rolewarden.aws.clients import client

SOURCE = "rolewarden.compliance"
DETAIL_TYPE = "Grant Policy Drift"


def drift_message(role: str, policy_arn: str, reason: str, account: str, region: str, now: datetime.datetime) -> str:
    """The message body for one drifted role (pure: the caller gives the time)."""
    return json.dumps(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "source": SOURCE,
            "detail-type": DETAIL_TYPE,
            "account": account,
            "region": region,
            "time": now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "resources": [],
            "detail": {"roleName": role, "policyArn": policy_arn, "reason": reason},
        },
        sort_keys=True,
    )


def report_grant_drift(queue_url: str, role: str, policy_arn: str, reason: str, account: str) -> None:
    """Send one drift message for ``role`` to the grants queue (errors are classified by the caller)."""
    region = str(client("sqs").meta.region_name or "")
    now = datetime.datetime.now(datetime.UTC)
    sqs.send(queue_url, drift_message(role, policy_arn, reason, account, region, now))
