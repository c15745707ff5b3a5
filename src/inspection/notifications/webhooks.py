"""Webhook deliveries of the outbox (`WebhookDelivery`), run by `inspection jobs run`.

Each delivery is claimed with a lease before the HTTP call, so two runners never post the same
delivery at the same time, and no database transaction stays open while a receiver answers.
Failures are retried with exponential backoff up to `webhook_max_attempts`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import httpx
import msgspec
from sqlalchemy import select, update

from inspection.db.engine import Database
from inspection.db.session import transaction
from inspection.notifications.models import WebhookDelivery
from inspection.settings import Settings

log = logging.getLogger("inspection.jobs")

WEBHOOK_TIMEOUT = 10.0
WEBHOOK_LEASE = timedelta(minutes=5)
WEBHOOK_BATCH = 100
MAX_BACKOFF = timedelta(hours=6)


@dataclass
class Deliveries:
    """What one pass over the due deliveries did."""

    delivered: int = 0
    failed_attempts: int = 0
    given_up: int = 0


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`X-Inspection-Signature`: `t=<unix time>,v1=<hex HMAC-SHA256 of "t.body">`. Receivers
    recompute it with the shared secret and reject old timestamps (replays)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


async def deliver_webhooks(
    database: Database,
    settings: Settings,
    now: datetime,
    *,
    http: httpx.AsyncClient | None = None,
) -> Deliveries:
    """POST every due delivery; failures are retried later with exponential backoff."""
    outcome = Deliveries()
    if not settings.webhook_url or not settings.webhook_secret:
        return outcome
    async with database.read_session() as session:
        due = list(
            await session.scalars(
                select(WebhookDelivery.id)
                .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
                .order_by(WebhookDelivery.created_at, WebhookDelivery.id)
                .limit(WEBHOOK_BATCH)
            )
        )
    client = http or httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT)
    try:
        for delivery_id in due:
            await _deliver_one(database, settings, now, outcome, client, delivery_id)
    finally:
        if http is None:
            await client.aclose()
    return outcome


async def _deliver_one(
    database: Database,
    settings: Settings,
    now: datetime,
    outcome: Deliveries,
    client: httpx.AsyncClient,
    delivery_id: UUID,
) -> None:
    assert settings.webhook_url is not None
    assert settings.webhook_secret is not None
    async with transaction(database) as session:
        # Claim: whoever moves the lease forward owns this attempt.
        claimed = await session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.status == "pending",
                WebhookDelivery.next_attempt_at <= now,
            )
            .values(next_attempt_at=now + WEBHOOK_LEASE)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return
        delivery = await session.get(WebhookDelivery, delivery_id)
        assert delivery is not None
        kind, payload = delivery.kind, delivery.payload
    body = msgspec.json.encode(payload)
    timestamp = int(now.timestamp())
    status: int | None = None
    error: str | None = None
    try:
        response = await client.post(
            settings.webhook_url,
            content=body,
            headers={
                "Content-Type": "application/json",
                "X-Inspection-Event": kind,
                "X-Inspection-Delivery": str(delivery_id),
                "X-Inspection-Signature": signature(settings.webhook_secret, timestamp, body),
            },
        )
        status = response.status_code
        if not 200 <= status < 300:
            error = f"HTTP {status}: {response.text[:200]}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    async with transaction(database) as session:
        delivery = await session.get(WebhookDelivery, delivery_id)
        assert delivery is not None
        delivery.attempts += 1
        delivery.last_status, delivery.last_error = status, error
        if error is None:
            delivery.status, delivery.delivered_at = "delivered", now
            outcome.delivered += 1
        elif delivery.attempts >= settings.webhook_max_attempts:
            delivery.status = "failed"
            outcome.given_up += 1
            log.error(
                "webhook delivery %s given up after %s attempts", delivery_id, delivery.attempts
            )
        else:
            backoff = min(timedelta(minutes=2 ** (delivery.attempts - 1)), MAX_BACKOFF)
            delivery.next_attempt_at = now + backoff
            outcome.failed_attempts += 1
            log.warning("webhook delivery %s failed (%s); retry in %s", delivery_id, error, backoff)
