"""Powertools wiring for the Lambda entry points: JSON Logger with the event id as correlation id, and
EMF Metrics. Kept out of the core so the CLI and tests need none of it.

No Tracer: Powertools' Tracer is built on the AWS X-Ray SDK for Python, which entered maintenance on
2026-02-25 and reaches end of support on 2027-02-25, and it was the largest import at cold start. The
functions keep ``Tracing: Active``, so Lambda still records its own segments for every sampled
invocation; per-call spans come from the ADOT layer if an operator adds it (README, Observability)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics

from rolewarden.settings import current
from rolewarden.telemetry import Sink


def _correlation_id(event: Any) -> str | None:
    if isinstance(event, dict):
        if isinstance(event.get("id"), str):
            return str(event["id"])
        records = event.get("Records")
        if isinstance(records, list) and records and isinstance(records[0], dict):
            return str(records[0].get("messageId", "")) or None
    return None


def wrap(handler: Any, capability: str) -> Callable[[Any, Any], dict[str, Any]]:
    settings = current()
    logger = Logger(service=settings.service_name)
    metrics = Metrics(namespace=settings.metrics_namespace, service=settings.service_name)
    handler.sink_factory = lambda: Sink(logger=logger, metrics=metrics)

    @functools.wraps(handler.__call__)
    def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
        logger.append_keys(capability=capability)
        logger.set_correlation_id(_correlation_id(event))
        try:
            return handler(event, context)  # type: ignore[no-any-return]
        finally:
            if handler.last_sink is not None:
                handler.last_sink.flush_metrics()

    wrapped: Callable[[Any, Any], dict[str, Any]] = metrics.log_metrics(lambda_handler)
    if settings.lambda_function_name:
        wrapped = logger.inject_lambda_context(wrapped, clear_state=True)
    wrapped.handler = handler  # type: ignore[attr-defined]  # tests and the local pipeline read last_sink
    return wrapped
