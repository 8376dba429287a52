"""A fault-injecting HTTP proxy between RoleWarden's boto3 clients and the moto server.

Every request is forwarded to the upstream (moto) unless a fault is drawn for it. Faults, each with a
configurable share of requests to the services RoleWarden must survive (EC2, IAM, S3):
- throttling with the real error of each service: ``RequestLimitExceeded`` (EC2, HTTP 503),
  ``Throttling`` (IAM, HTTP 400), ``SlowDown`` (S3, HTTP 503);
- server errors: HTTP 500 ``InternalError`` / 503 ``ServiceUnavailable``;
- dropped connections: the socket is closed without an answer (before or, rarely, after the request
  reached moto: a write whose answer was lost);
- added latency.
It listens on loopback only, counts what it forwarded, and stops with the process.
"""

from __future__ import annotations

import http.client
import random
import re
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

_SERVICE_RE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_THROTTLE = {
    "ec2": (503, "RequestLimitExceeded", "Request limit exceeded."),
    "iam": (400, "Throttling", "Rate exceeded"),
    "s3": (503, "SlowDown", "Please reduce your request rate."),
}
_FAULTED_SERVICES = frozenset(_THROTTLE)
_WRITE_PREFIXES = (
    "Associate",
    "Replace",
    "Disassociate",
    "Create",
    "Delete",
    "Put",
    "Set",
    "Attach",
    "Detach",
    "Update",
    "Complete",
    "Tag",
    "Untag",
    "Remove",
    "Add",
)


@dataclass
class FaultPlan:
    throttle: float = 0.0  # share of EC2/IAM/S3 requests answered with the service's throttling error
    server_error: float = 0.0  # share answered with a 500/503
    drop: float = 0.0  # share whose connection is closed without an answer
    latency_ms: float = 0.0  # added to every forwarded request
    seed: int = 7


@dataclass
class ProxyStats:
    forwarded: Counter[str] = field(default_factory=Counter)  # "service:Operation" that reached moto
    writes_ok: Counter[str] = field(default_factory=Counter)  # effective writes: reached moto, 2xx
    injected: Counter[str] = field(default_factory=Counter)  # fault kind -> count
    lock: threading.Lock = field(default_factory=threading.Lock)


def _error_body(service: str, code: str, message: str) -> bytes:
    if service == "ec2":
        return (
            f"<?xml version='1.0' encoding='UTF-8'?><Response><Errors><Error><Code>{code}</Code><Message>"
            f"{message}</Message></Error></Errors><RequestID>chaos</RequestID></Response>"
        ).encode()
    if service == "s3":
        return (
            f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message>"
            "<RequestId>chaos</RequestId></Error>"
        ).encode()
    return (
        f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        "<RequestId>chaos</RequestId></ErrorResponse>"
    ).encode()


def _operation(service: str, method: str, path: str, body: bytes, headers: Any) -> str:
    if service in ("ec2", "iam", "autoscaling", "sns", "sts"):
        action = parse_qs(body.decode(errors="replace")).get("Action") or parse_qs(urlsplit(path).query).get("Action")
        return action[0] if action else "?"
    target = headers.get("X-Amz-Target")
    if target:
        return str(target).rsplit(".", 1)[-1]
    if service == "s3":
        query = urlsplit(path).query
        sub = query.split("=", 1)[0].split("&", 1)[0] if query else ""
        return f"{method} {sub or 'object'}"
    return method


class ChaosProxy:
    """``with ChaosProxy(upstream_port, FaultPlan(...)) as proxy:`` — ``proxy.endpoint`` is its URL."""

    def __init__(self, upstream_port: int, plan: FaultPlan | None = None) -> None:
        self.upstream_port = upstream_port
        self.plan = plan or FaultPlan()
        self.stats = ProxyStats()
        self._random = random.Random(self.plan.seed)
        self._random_lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://localhost:{self.port}"

    def draw(self) -> float:
        with self._random_lock:
            return self._random.random()

    def start(self) -> ChaosProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                return

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                match = _SERVICE_RE.search(self.headers.get("Authorization", ""))
                service = match.group(1) if match else "?"
                operation = _operation(service, self.command, self.path, body, self.headers)
                plan = proxy.plan
                if service in _FAULTED_SERVICES:
                    roll = proxy.draw()
                    if roll < plan.throttle:
                        status, code, message = _THROTTLE[service]
                        return self._answer(status, _error_body(service, code, message), "throttle")
                    roll -= plan.throttle
                    if roll < plan.server_error:
                        status, code = (500, "InternalError") if proxy.draw() < 0.5 else (503, "ServiceUnavailable")
                        return self._answer(status, _error_body(service, code, "chaos"), "server_error")
                    roll -= plan.server_error
                    if roll < plan.drop:
                        with proxy.stats.lock:
                            proxy.stats.injected["drop"] += 1
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return None
                if plan.latency_ms:
                    time.sleep(plan.latency_ms / 1000)
                return self._forward(service, operation, body)

            def _answer(self, status: int, payload: bytes, kind: str) -> None:
                with proxy.stats.lock:
                    proxy.stats.injected[kind] += 1
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _forward(self, service: str, operation: str, body: bytes) -> None:
                conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                name = f"{service}:{operation}"
                with proxy.stats.lock:
                    proxy.stats.forwarded[name] += 1
                    if 200 <= response.status < 300 and operation.startswith(_WRITE_PREFIXES):
                        proxy.stats.writes_ok[name] += 1
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                conn.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="chaos-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> ChaosProxy:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
