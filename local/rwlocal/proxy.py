"""A fault-injecting HTTP proxy between RoleWarden's boto3 clients and the moto server.

Every request is forwarded to the upstream (moto) unless a fault is drawn for it. Faults, each with a
configurable share of requests to the services RoleWarden must survive (EC2, IAM, S3):
- throttling with the real error of each service: ``RequestLimitExceeded`` (EC2, HTTP 503),
  ``Throttling`` (IAM, HTTP 400), ``SlowDown`` (S3, HTTP 503);
- server errors: HTTP 500 ``InternalError`` / 503 ``ServiceUnavailable``;
- dropped connections: the socket is closed without an answer (before or, rarely, after the request
  reached moto: a write whose answer was lost);
- added latency.
With a ``Hostility`` (rwlocal.hostile) it also plays the parts of AWS that moto models too kindly, shared
by every process whose clients go through it:
- token-bucket throttling per API (rwlocal.throttling: EC2's documented buckets, IAM's assumed ones);
- IAM reads that lag writes, and DescribeInstances that misses an instance just launched;
- SQS visibility timeouts in requests scaled by the time scale (moto then keeps them in real time);
- EC2 association ids as AWS hands them out: every ReplaceIamInstanceProfileAssociation answers with a
  fresh association id, and a Replace or Disassociate naming a superseded id fails with ``IncorrectState``
  (moto keeps the id and accepts both; always on, it is how EC2 behaves, not a fault);
- Auto Scaling lifecycle hooks: CompleteLifecycleAction and RecordLifecycleActionHeartbeat answered
  from a registry of pending hooks (moto implements neither), expiring with their default result.
It listens on loopback only, counts what it forwarded, and stops with the process.
"""

from __future__ import annotations

import http.client
import json
import random
import re
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit
from xml.etree import ElementTree

from rwlocal.hostile import Associations, Ec2Lag, HookRegistry, Hostility, IamLag, SimClock, scale_visibility
from rwlocal.throttling import THROTTLE_ERRORS, Buckets, is_read

_SERVICE_RE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_ACCESS_KEY_RE = re.compile(r"Credential=([^/]+)/")


def _lag_key(authorization: str, body: bytes) -> bytes:
    """What IAM's lagging answers are kept by: the request and its signer's access key. With several accounts
    (chaos --accounts) one body ("GetInstanceProfile web-server") is each account's own question."""
    signed_by = _ACCESS_KEY_RE.search(authorization)
    return (signed_by.group(1).encode() if signed_by else b"") + b"\n" + body


_THROTTLE = {**THROTTLE_ERRORS, "s3": (503, "SlowDown", "Please reduce your request rate.")}
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
    attempts: Counter[str] = field(default_factory=Counter)  # service -> every request seen (answered or not)
    write_times: list[tuple[float, str]] = field(default_factory=list)  # (real time, "service:Operation")
    write_targets: Counter[tuple[str, str]] = field(default_factory=Counter)  # ("service:Op", instance/role)
    visibility_set: Counter[int] = field(default_factory=Counter)  # ChangeMessageVisibility seconds asked -> count
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


def _query_params(body: bytes, path: str) -> dict[str, str]:
    params = {k: v[0] for k, v in parse_qs(urlsplit(path).query).items()}
    params.update({k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()})
    return params


def _ec2_ns(root: ElementTree.Element) -> str:
    return root.tag[1:].split("}", 1)[0] if root.tag.startswith("{") else ""


def _launched_ids(payload: bytes) -> list[str]:
    """Instance ids in a RunInstances answer."""
    try:
        root = ElementTree.fromstring(payload)
    except ElementTree.ParseError:
        return []
    ns = _ec2_ns(root)
    tag = f"{{{ns}}}instanceId" if ns else "instanceId"
    return [node.text for node in root.iter(tag) if node.text]


def _strip_instances(payload: bytes, hidden: set[str]) -> tuple[bytes, int]:
    """A DescribeInstances answer without the hidden instances (empty reservations dropped)."""
    try:
        root = ElementTree.fromstring(payload)
    except ElementTree.ParseError:
        return payload, 0
    ns = _ec2_ns(root)

    def q(tag: str) -> str:
        return f"{{{ns}}}{tag}" if ns else tag

    removed = 0
    reservations = root.find(q("reservationSet"))
    if reservations is None:
        return payload, 0
    for reservation in list(reservations):
        instances = reservation.find(q("instancesSet"))
        if instances is None:
            continue
        for instance in list(instances):
            if instance.findtext(q("instanceId")) in hidden:
                instances.remove(instance)
                removed += 1
        if len(instances) == 0:
            reservations.remove(reservation)
    if not removed:
        return payload, 0
    if ns:
        ElementTree.register_namespace("", ns)
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True), removed


_INSTANCE_ID_RE = re.compile(rb"<instanceId>(i-[0-9a-f]+)</instanceId>")


def _write_target(service: str, params: dict[str, str], payload: bytes) -> str:
    """What a successful write changed: the instance (EC2) or the role or policy (IAM)."""
    if service == "ec2":
        found = _INSTANCE_ID_RE.search(payload)
        return found.group(1).decode() if found else params.get("InstanceId", "")
    if service == "iam":
        return params.get("RoleName") or params.get("PolicyArn") or params.get("PolicyName", "")
    return ""


_ASSOCIATION_ID_RE = re.compile(rb"<associationId>(iip-assoc-[0-9a-zA-Z]+)</associationId>")
_ASSOCIATION_WRITES = ("ReplaceIamInstanceProfileAssociation", "DisassociateIamInstanceProfile")


def _with_params(body: bytes, changes: dict[str, str]) -> bytes:
    """An EC2 query body with some parameters replaced."""
    pairs = parse_qsl(body.decode(errors="replace"), keep_blank_values=True)
    return urlencode([(k, changes.get(k, v)) for k, v in pairs]).encode()


def _not_active(association_id: str) -> bytes:
    # EC2's answer to a Replace naming an association that is no longer the active one (aws-notes section 3;
    # aws/aws-cli#5251 shows the exact text). A Disassociate naming it is assumed to get the same answer.
    message = f"The association {association_id} is not the active association"
    return _error_body("ec2", "IncorrectState", message)


def _autoscaling_ok(operation: str) -> bytes:
    return (
        f'<{operation}Response xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><{operation}Result/>'
        f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></{operation}Response>"
    ).encode()


class ChaosProxy:
    """``with ChaosProxy(upstream_port, FaultPlan(...), Hostility(...)) as proxy:`` — ``proxy.endpoint`` is
    its URL. Without a ``Hostility`` it injects only the random faults of the plan (and still answers
    lifecycle-hook calls from ``proxy.hooks``, which moto cannot)."""

    def __init__(
        self,
        upstream_port: int,
        plan: FaultPlan | None = None,
        hostility: Hostility | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.upstream_port = upstream_port
        self.plan = plan or FaultPlan()
        self.hostility = hostility
        self.stats = ProxyStats()
        self._random = random.Random(self.plan.seed)
        self._random_lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._reaper: threading.Thread | None = None
        self._stopping = threading.Event()
        self.port = 0
        # simulated seconds; tests inject their own clock to step time without waiting
        self.clock: Callable[[], float] = clock or SimClock(hostility.time_scale if hostility else 1.0)
        self.buckets = Buckets(self.clock, hostility.bucket_factor) if hostility and hostility.buckets else None
        lag_random = random.Random(hostility.seed if hostility else 0)
        lag_lock = threading.Lock()

        def lag_draw() -> float:
            with lag_lock:
                return lag_random.random()

        self.iam_lag = IamLag(self.clock, hostility.iam_lag, hostility.iam_stale, lag_draw) if hostility else None
        self.ec2_lag = Ec2Lag(self.clock, hostility.ec2_lag) if hostility else None
        self.hooks = HookRegistry(self.clock)
        self.associations = Associations()
        #: called after every effective (2xx) write with (service, operation, params, answer body); e.g. the
        #: chaos suite's record of grant-policy versions
        self.on_write: Callable[[str, str, dict[str, str], bytes], None] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://localhost:{self.port}"

    def draw(self) -> float:
        with self._random_lock:
            return self._random.random()

    def count(self, kind: str) -> None:
        with self.stats.lock:
            self.stats.injected[kind] += 1

    def launched(self, instance_ids: list[str]) -> None:
        """Instances just launched (outside the proxy): DescribeInstances misses them for the EC2 lag."""
        if self.ec2_lag is not None:
            self.ec2_lag.launched(instance_ids)

    def throttled_fraction(self, service: str) -> float:
        """Share of the service's requests answered with a throttling error (random or bucket)."""
        with self.stats.lock:
            total = self.stats.attempts[service]
            throttled = self.stats.injected[f"throttle:{service}"] + sum(
                n for k, n in self.stats.injected.items() if k.startswith(f"bucket:{service}:")
            )
        return throttled / total if total else 0.0

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
                with proxy.stats.lock:
                    proxy.stats.attempts[service] += 1
                if service == "autoscaling" and operation in (
                    "CompleteLifecycleAction",
                    "RecordLifecycleActionHeartbeat",
                ):
                    return self._lifecycle(operation, _query_params(body, self.path))
                plan = proxy.plan
                if service in _FAULTED_SERVICES:
                    roll = proxy.draw()
                    if roll < plan.throttle:
                        status, code, message = _THROTTLE[service]
                        return self._answer(status, _error_body(service, code, message), f"throttle:{service}")
                    roll -= plan.throttle
                    if roll < plan.server_error:
                        status, code = (500, "InternalError") if proxy.draw() < 0.5 else (503, "ServiceUnavailable")
                        return self._answer(status, _error_body(service, code, "chaos"), "server_error")
                    roll -= plan.server_error
                    if roll < plan.drop:
                        proxy.count("drop")
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return None
                params: dict[str, str] = {}
                if service in ("ec2", "iam"):
                    params = _query_params(body, self.path)
                if proxy.buckets is not None and service in THROTTLE_ERRORS:
                    empty = proxy.buckets.admit(service, operation, params)
                    if empty is not None:
                        status, code, message = THROTTLE_ERRORS[service]
                        return self._answer(status, _error_body(service, code, message), f"bucket:{empty}")
                if service == "iam" and proxy.iam_lag is not None and is_read(operation):
                    stale = proxy.iam_lag.stale(_lag_key(self.headers.get("Authorization", ""), body))
                    if stale is not None:
                        proxy.count(f"stale:iam:{operation}")
                        return self._reply(stale.status, stale.headers, stale.payload)
                hidden: set[str] = set()
                if service == "ec2" and operation == "DescribeInstances" and proxy.ec2_lag is not None:
                    hidden = proxy.ec2_lag.hidden()
                    asked = {v for k, v in params.items() if k.startswith("InstanceId.")}
                    missing = sorted(asked & hidden)
                    if missing:
                        message = f"The instance ID '{missing[0]}' does not exist"
                        payload = _error_body("ec2", "InvalidInstanceID.NotFound", message)
                        return self._answer(400, payload, "ec2-lag:NotFound")
                if service == "sqs" and proxy.hostility is not None and proxy.hostility.scale_visibility:
                    body = self._scaled_visibility(operation, body)
                if plan.latency_ms:
                    time.sleep(plan.latency_ms / 1000)
                if service == "ec2" and operation in _ASSOCIATION_WRITES:
                    return self._association_write(operation, body, params)
                if service == "ec2" and operation in (
                    "AssociateIamInstanceProfile",
                    "DescribeIamInstanceProfileAssociations",
                ):
                    return self._association_read(operation, body, params)
                return self._forward(service, operation, body, hidden, params)

            def _association_write(self, operation: str, body: bytes, params: dict[str, str]) -> None:
                """Replace/Disassociate as EC2 does them: a superseded id is refused, a Replace answers
                with a fresh id. The check and the write happen under one lock, as they do inside EC2."""
                registry = proxy.associations
                given = params.get("AssociationId", "")
                with registry.lock:
                    if registry.superseded(given):
                        return self._answer(400, _not_active(given), f"association-superseded:{operation}")
                    real = registry.real(given)
                    forwarded = _with_params(body, {"AssociationId": real}) if real != given else body

                    def rewrite(payload: bytes) -> bytes:
                        if operation == "ReplaceIamInstanceProfileAssociation":
                            shown = registry.replaced(given)
                        else:
                            registry.disassociated(given)
                            shown = given
                        return _ASSOCIATION_ID_RE.sub(f"<associationId>{shown}</associationId>".encode(), payload)

                    return self._forward("ec2", operation, forwarded, set(), params, rewrite)

            def _association_read(self, operation: str, body: bytes, params: dict[str, str]) -> None:
                """Associate and Describe: moto's ids shown as their active aliases (and asked for by them)."""
                registry = proxy.associations
                asked = {k: registry.real(v) for k, v in params.items() if k.startswith("AssociationId.")}
                forwarded = _with_params(body, asked) if any(asked[k] != params[k] for k in asked) else body

                def rewrite(payload: bytes) -> bytes:
                    if operation == "AssociateIamInstanceProfile":
                        for found in _ASSOCIATION_ID_RE.findall(payload):
                            registry.associated(found.decode())
                        return payload
                    return _ASSOCIATION_ID_RE.sub(
                        lambda m: (
                            f"<associationId>{registry.active_alias(m.group(1).decode())}</associationId>".encode()
                        ),
                        payload,
                    )

                # Under the lock: an answer moto gave before a Replace must not be shown with the id that
                # Replace handed out (its old profile would look current under the fresh id).
                with registry.lock:
                    return self._forward("ec2", operation, forwarded, set(), params, rewrite)

            def _scaled_visibility(self, operation: str, body: bytes) -> bytes:
                assert proxy.hostility is not None
                scale = proxy.hostility.time_scale
                if operation not in ("ReceiveMessage", "ChangeMessageVisibility", "ChangeMessageVisibilityBatch"):
                    return body
                try:
                    request = json.loads(body or b"{}")
                except ValueError:
                    return body
                entries = request.get("Entries", []) if operation == "ChangeMessageVisibilityBatch" else [request]
                for entry in entries:
                    if "VisibilityTimeout" not in entry:
                        continue
                    asked = float(entry["VisibilityTimeout"])
                    if operation != "ReceiveMessage":
                        with proxy.stats.lock:
                            proxy.stats.visibility_set[int(asked)] += 1
                    entry["VisibilityTimeout"] = scale_visibility(asked, scale)
                proxy.count(f"visibility-scaled:{operation}")
                return json.dumps(request).encode()

            def _lifecycle(self, operation: str, params: dict[str, str]) -> None:
                error = proxy.hooks.answer(operation, params)
                if error is None:
                    proxy.count(f"hook:{operation}")
                    return self._reply(200, [("Content-Type", "text/xml")], _autoscaling_ok(operation))
                status, code, message = error
                return self._answer(status, _error_body("autoscaling", code, message), f"hook-error:{operation}")

            def _answer(self, status: int, payload: bytes, kind: str) -> None:
                proxy.count(kind)
                self._reply(status, [("Content-Type", "text/xml")], payload)

            def _reply(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
                self.send_response(status)
                for key, value in headers:
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _forward(
                self,
                service: str,
                operation: str,
                body: bytes,
                hidden: set[str],
                params: dict[str, str],
                rewrite: Callable[[bytes], bytes] | None = None,
            ) -> None:
                asked_at = proxy.clock()
                conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
                headers["Content-Length"] = str(len(body))
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                conn.close()
                name = f"{service}:{operation}"
                ok = 200 <= response.status < 300
                if ok and rewrite is not None:
                    payload = rewrite(payload)
                answer_headers = response.getheaders()
                with proxy.stats.lock:
                    proxy.stats.forwarded[name] += 1
                    if ok and operation.startswith(_WRITE_PREFIXES):
                        proxy.stats.writes_ok[name] += 1
                        proxy.stats.write_times.append((time.monotonic(), name))
                        target = _write_target(service, params, payload)
                        if target:
                            proxy.stats.write_targets[(name, target)] += 1
                if ok and operation.startswith(_WRITE_PREFIXES) and proxy.on_write is not None:
                    proxy.on_write(service, operation, params, payload)
                if service == "iam" and proxy.iam_lag is not None:
                    if is_read(operation):
                        proxy.iam_lag.record(
                            _lag_key(self.headers.get("Authorization", ""), body),
                            response.status,
                            answer_headers,
                            payload,
                            asked_at,
                        )
                    elif ok:
                        proxy.iam_lag.wrote()
                if service == "ec2" and ok and proxy.ec2_lag is not None:
                    if operation == "RunInstances":
                        proxy.ec2_lag.launched(_launched_ids(payload))
                    elif operation == "DescribeInstances" and hidden:
                        payload, removed = _strip_instances(payload, hidden)
                        if removed:
                            proxy.count("ec2-lag:absent")
                self._reply(response.status, answer_headers, payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="chaos-proxy", daemon=True)
        self._thread.start()
        self._stopping.clear()
        self._reaper = threading.Thread(target=self._reap, name="chaos-proxy-hooks", daemon=True)
        self._reaper.start()
        return self

    def _reap(self) -> None:
        """Expire lifecycle hooks whose heartbeat timeout passed, as Auto Scaling does on its own."""
        while not self._stopping.wait(0.05):
            self.hooks.expire_due()

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> ChaosProxy:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
