"""Order identifiers.

A parent order's id is derived from (account, client order id): the same submit always maps to
the same event stream, so a retried or concurrent duplicate collides on the stream's first
version instead of creating a second order. Child ids extend their parent's (``P….3``), so any
order id names the stream it lives in.
"""

from __future__ import annotations

import hashlib

PARENT_PREFIX = "P"
_CHILD_SEPARATOR = "."


def parent_order_id(account: str, client_order_id: str) -> str:
    digest = hashlib.blake2b(f"{account}\x1f{client_order_id}".encode(), digest_size=10).hexdigest()
    return PARENT_PREFIX + digest.upper()


def child_order_id(parent_id: str, sequence: int) -> str:
    return f"{parent_id}{_CHILD_SEPARATOR}{sequence}"


def stream_id_of(order_id: str) -> str:
    """The event stream (the parent order's id) that holds `order_id`."""
    return order_id.split(_CHILD_SEPARATOR, 1)[0]


def is_child_id(order_id: str) -> bool:
    return _CHILD_SEPARATOR in order_id
