"""SQS: the dead-letter send that carries a record's reason, a failed record's retry delay, and the
continuation message of a sweep that spent its time budget, and the account sweeps of a fanned-out sweep."""

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


def retry_in(queue_url: str, receipt_handle: str, seconds: int) -> None:
    """Make a failed record visible again in ``seconds`` (instead of the queue's visibility timeout)."""
    client("sqs").change_message_visibility(QueueUrl=queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds)


def send(queue_url: str, body: str) -> None:
    """One message (a continuation, or a Scheduled Event handed on to the sweep queue)."""
    client("sqs").send_message(QueueUrl=queue_url, MessageBody=body)


def send_all(queue_url: str, bodies: list[str]) -> None:
    """Many messages, ten to a SendMessageBatch call (SQS's limit); raises if any entry was refused, after
    sending the rest (a re-send of the whole list is harmless: each message starts idempotent work)."""
    refused: list[str] = []
    for start in range(0, len(bodies), 10):
        chunk = bodies[start : start + 10]
        answer = client("sqs").send_message_batch(
            QueueUrl=queue_url, Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(chunk)]
        )
        refused.extend(f"{f.get('Code', '?')}: {f.get('Message', '')}" for f in answer.get("Failed", []))
    if refused:
        raise RuntimeError(f"{len(refused)} of {len(bodies)} messages refused by SQS: {refused[0]}")
