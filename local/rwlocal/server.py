"""An embedded moto server on a free loopback port, with boto3 pointed at it over real HTTP."""

from __future__ import annotations

import os
import socket
import urllib.request
from typing import Any

from moto.server import ThreadedMotoServer

from rolewarden.aws import clients

ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}
ACCOUNT_ID = "123456789012"
#: Settings a deployed function gets from the template (or Lambda); tests and the bench clear them so a
#: run starts from the config it writes, not from whatever the shell had.
ROLEWARDEN_ENV = (
    "ROLEWARDEN_CONFIG",
    "ROLEWARDEN_TABLE",
    "ROLEWARDEN_DLQ_URL",
    "ROLEWARDEN_FINDINGS_TOPIC",
    "ROLEWARDEN_DRY_RUN",
    "ROLEWARDEN_MANAGED_PATH",
    "ROLEWARDEN_SELF_ROLE_ARNS",
    "ROLEWARDEN_MAX_RECEIVE",
    "ROLEWARDEN_THROTTLE_WAIT",
    "ROLEWARDEN_MODE",
    "ROLEWARDEN_EXECUTION_ROLE",
    "ROLEWARDEN_ACCOUNT_ID",
    "ROLEWARDEN_SECURITY_HUB",
    "AWS_LAMBDA_FUNCTION_NAME",
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalAws:
    """Start with ``with LocalAws() as aws:``; ``aws.endpoint`` is the URL, ``aws.reset()`` clears state."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        # "localhost", not 127.0.0.1: moto reads path-style S3 template URLs only for localhost.
        self.endpoint = f"http://localhost:{self.port}"
        self._server: ThreadedMotoServer | None = None
        self._saved: dict[str, str | None] = {}

    def start(self) -> LocalAws:
        import logging
        import warnings

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        logging.getLogger("moto").setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", message="Tried to parse AWS::", category=UserWarning)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        env = {**ENV, "AWS_ENDPOINT_URL": self.endpoint}
        for key, value in env.items():
            self._saved[key] = os.environ.get(key)
            os.environ[key] = value
        clients.reset()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved.clear()
        clients.reset()

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
        clients.reset()
        # what this process remembers of the reset world: the organization, member credentials, STS's answer
        from rolewarden import account_runs
        from rwlocal import multiaccount

        account_runs.reset()
        multiaccount.forget_sessions()

    def __enter__(self) -> LocalAws:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
