"""Powertools wiring for the Lambda entry points: JSON Logger with the event id as correlation id,
EMF Metrics, and Tracer. Kept out of the core so the CLI and tests need none of it."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics

from rolewarden.observe import Sink


def _correlation_id(event: Any) -> str | None:
    if isinstance(event, dict):
        if isinstance(event.get("id"), str):
            return str(event["id"])
        records = event.get("Records")
        if isinstance(records, list) and records and isinstance(records[0], dict):
            return str(records[0].get("messageId", "")) or None
    return None


def wrap(handler: Any, capability: str) -> Callable[[Any, Any], dict[str, Any]]:
    service = os.environ.get("POWERTOOLS_SERVICE_NAME", "rolewarden")
    logger = Logger(service=service)
    metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "RoleWarden"), service=service)
    tracer = None
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") and os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() != "true":
        from aws_lambda_powertools import Tracer  # loads the X-Ray SDK: only where it is used

        # RoleWarden's only outbound calls are botocore's: patch just that (patch_all imports and
        # patches a dozen libraries it never uses, at cold start)
        tracer = Tracer(service=service, patch_modules=["botocore"])
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
    if tracer is not None:
        wrapped = tracer.capture_lambda_handler(wrapped)
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        wrapped = logger.inject_lambda_context(wrapped, clear_state=True)
    wrapped.handler = handler  # type: ignore[attr-defined]  # tests and the local pipeline read last_sink
    return wrapped
