"""The ``syndication`` section of the hub's settings: push delivery, and open publication under it.

The retry schedule is the Standard Webhooks one; ``time_scale`` compresses it, the secret overlap
window and the delivery leases for tests and the sandbox without changing their shape.

Leases are short on purpose: a dispatcher renews the lease of the batch it is working on every
``lease_renew_s``, so a slow receiver keeps its delivery with one dispatcher, while the claims of a
dispatcher that died (or lost the database) are free for another within ``lease_s``."""

from __future__ import annotations

from pydantic import BaseModel, Field, NonNegativeFloat, SecretStr, field_validator, model_validator

from hub.notices.publication import PublicationSettings
from hub.subscriptions.secret_box import SecretBox

__all__ = ["MIN_LEASE_S", "STANDARD_RETRY_SCHEDULE_S", "SyndicationSettings"]

# Delay before each attempt: now, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h.
STANDARD_RETRY_SCHEDULE_S: tuple[float, ...] = (
    0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400,
)

# However small ``time_scale`` is, a lease stays long enough for a few renewals to reach the database.
MIN_LEASE_S = 0.25


class SyndicationSettings(BaseModel):
    model_config = {"extra": "forbid"}

    retry_schedule_s: tuple[NonNegativeFloat, ...] = STANDARD_RETRY_SCHEDULE_S
    time_scale: float = Field(1.0, gt=0, le=1.0)  # 0.001 turns 24 h into 86 s
    jitter: float = Field(0.1, ge=0, le=0.5)  # ± fraction of each delay
    max_retry_after_s: float = Field(86400.0, ge=0)  # Retry-After beyond this is capped
    connect_timeout_s: float = Field(5.0, gt=0)
    read_timeout_s: float = Field(15.0, gt=0)  # per read; attempt_deadline_s bounds the whole attempt
    # A webhook attempt's total time — connect, send, the reply's headers and what is read of its body —
    # however slowly the receiver answers; past it the attempt failed and is retried on schedule. Not
    # scaled by time_scale, like the timeouts.
    attempt_deadline_s: float = Field(15.0, gt=0, le=300)
    # At most this many bytes of a reply are read (the rest is discarded with the connection); the
    # delivery log keeps a short printable excerpt of a failed one.
    max_reply_bytes: int = Field(4096, ge=0, le=1024 * 1024)
    max_payload_bytes: int = Field(256 * 1024, ge=1024)
    allow_private_targets: bool = False  # loopback/private webhook targets: sandbox and tests only
    # Loopback webhook targets only (127.0.0.0/8, ::1): the one-machine demo sets it so a receiver on the
    # same machine can be tried; a deployment never needs it (the hub warns at start when it is on).
    allow_loopback_targets: bool = False
    secret_overlap_s: float = Field(86400.0, ge=0)  # old secret keeps signing this long after rotation
    dispatch_interval_s: float = Field(0.5, gt=0)
    dispatch_batch: int = Field(200, ge=1, le=10_000)
    dispatch_concurrency: int = Field(16, ge=1, le=256)
    # Webhook attempts one subscription may have in flight at once (across dispatchers), so a slow
    # endpoint holds at most this many of the pool while the others' deliveries keep flowing.
    subscription_concurrency: int = Field(2, ge=1, le=256)
    # A claimed delivery's lease, renewed every lease_renew_s while its dispatcher works on it: a dead
    # dispatcher's claims are another's after lease_s. Both scaled by time_scale.
    lease_s: float = Field(10.0, gt=0)
    lease_renew_s: float = Field(3.0, gt=0)
    # How long a dispatcher keeps retrying to record its outcomes while the database is away, before it
    # lets its leases run out (what it sent may then be sent again). Not scaled: it is about outages.
    record_retry_s: float = Field(30.0, ge=0)
    amqp_queue_delivery_limit: int = Field(20, ge=1)
    # Fernet keys (``Fernet.generate_key()``) that encrypt webhook secrets at rest; the first encrypts,
    # all decrypt. Set them from the environment or a secrets file, never in a committed file.
    secret_keys: list[SecretStr] = []
    # Open publication's settings share the section; validated here too so one check covers both.
    publication: PublicationSettings = PublicationSettings()

    @field_validator("secret_keys")
    @classmethod
    def _fernet_keys(cls, keys: list[SecretStr]) -> list[SecretStr]:
        from cryptography.fernet import Fernet

        for index, key in enumerate(keys):
            try:
                Fernet(key.get_secret_value().encode())
            except (ValueError, TypeError):
                raise ValueError(f"secret_keys[{index}] is not a Fernet key (32 url-safe base64 bytes)") from None
        return keys

    @model_validator(mode="after")
    def _renewal_within_lease(self) -> SyndicationSettings:
        if self.lease_renew_s * 2 > self.lease_s:
            raise ValueError("lease_renew_s must be at most half of lease_s, so one missed renewal loses nothing")
        return self

    @property
    def lease(self) -> float:
        """The delivery lease in seconds: ``lease_s`` scaled by ``time_scale``, never below
        :data:`MIN_LEASE_S`."""
        return max(MIN_LEASE_S, self.lease_s * self.time_scale)

    @property
    def lease_renewal(self) -> float:
        """Seconds between renewals: the same fraction of :attr:`lease` as ``lease_renew_s`` of ``lease_s``."""
        return self.lease * self.lease_renew_s / self.lease_s

    def secret_box(self) -> SecretBox:
        return SecretBox([key.get_secret_value() for key in self.secret_keys])

