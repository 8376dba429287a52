"""Policy documents as data: loading (dict, JSON or URL-encoded JSON, as IAM returns them), the one
canonical JSON form, and the one content hash. Every comparison and record of a document uses these."""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from collections.abc import Mapping
from typing import Any


class PolicyDocumentError(ValueError):
    """A policy document that is not a JSON object (or not a policy at all)."""


def load_document(document: Any) -> dict[str, Any]:
    """A policy document as a dict, from a dict, a JSON string or a URL-encoded JSON string."""
    if isinstance(document, Mapping):
        return dict(document)
    if isinstance(document, str):
        text = document.strip()
        if text[:3].upper() == "%7B":
            text = urllib.parse.unquote(text)
        try:
            loaded = json.loads(text)
        except ValueError as exc:
            raise PolicyDocumentError(f"not JSON: {exc}") from exc
        if not isinstance(loaded, dict):
            raise PolicyDocumentError("the document is not a JSON object")
        return loaded
    raise PolicyDocumentError(f"a policy document cannot be a {type(document).__name__}")


def canonical_json(document: Any) -> str:
    """Deterministic JSON (sorted keys, no whitespace) for comparisons, sizes and hashes."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)


def content_hash(document: Any, length: int = 16) -> str:
    """The sha256 of the canonical JSON (a string is hashed as it is), cut to ``length`` hex digits."""
    text = document if isinstance(document, str) else canonical_json(document)
    return hashlib.sha256(text.encode()).hexdigest()[:length]
