"""SQS: the dead-letter send that carries a record's reason."""

from __future__ import annotations

from rolewarden.aws.clients import client


def send_dead_letter(
    queue_url: str, body: str, *, reason: str, capability: str, receive_count: int, message_id: str
) -> None:
    client("sqs").send_message(
        QueueUrl=queue_url,
        MessageBody=body,
        MessageAttributes={
            "rolewarden-reason": {"DataType": "String", "StringValue": reason[:1000] or "unknown"},
            "rolewarden-capability": {"DataType": "String", "StringValue": capability},
            "rolewarden-receive-count": {"DataType": "Number", "StringValue": str(receive_count)},
            "rolewarden-message-id": {"DataType": "String", "StringValue": message_id},
        },
    )
