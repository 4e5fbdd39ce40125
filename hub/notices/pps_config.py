"""The ``pps:`` section: pulling KONEPS bid notices from the PPS open API (docs/pps.md).

The key is read from the environment variable named by ``key_env`` (default ``G2BHUB_PPS_KEY``), in
either of the portal's forms, else ``key`` (the sandbox twin's public test key, which is refused for
any endpoint that is not a sandbox: :mod:`connectors.key_policy`).
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from connectors.key_policy import is_sandbox_endpoint, is_sandbox_key
from hub.spine.settings import Section

__all__ = ["SANDBOX_PPS_KEY", "PpsRetrySettings", "PpsSettings"]

SANDBOX_PPS_KEY = "sandbox-pps+key/0123456789abcdef=="
# The service refuses windows over one month (result 07); 28 days fits in any month.
MAX_WINDOW_H = 28 * 24


class PpsRetrySettings(Section):
    attempts: int = Field(4, ge=1, le=20)  # per page, for timeouts, 5xx and the service's transient codes
    quota_attempts: int = Field(6, ge=1, le=50)  # per page, for result code 22
    initial_s: float = Field(2.0, ge=0)
    max_s: float = Field(60.0, ge=0)


class PpsSettings(Section):
    enabled: bool = False  # the scheduled pull; `g2bhub pps pull` works either way
    endpoint: str = "http://127.0.0.1:8900/pps/1230000/ad/BidPublicInfoService"
    key_env: str = "G2BHUB_PPS_KEY"
    key: SecretStr | None = SecretStr(SANDBOX_PPS_KEY)
    # The organisation (id, as `g2bhub orgs list` shows) the pulled notices are imported as.
    org_id: str | None = None
    operations: list[str] = [
        "getBidPblancListInfoThng",
        "getBidPblancListInfoServc",
        "getBidPblancListInfoCnstwk",
        "getBidPblancListInfoFrgcpt",
    ]
    # change: inqryDiv=3 (change time, sees in-place corrections); registration: inqryDiv=1.
    inquiry: Literal["change", "registration"] = "change"
    interval_s: float = Field(900.0, gt=0)
    window_h: float = Field(24.0, gt=0, le=MAX_WINDOW_H)
    # Windows end this long before now: what the service registered in the last minutes may not be listed yet.
    settle_minutes: int = Field(10, ge=0, le=1440)
    page_size: int = Field(100, ge=1, le=999)
    # Where the first pull starts when an operation has no checkpoint; None: one window before now.
    start: datetime | None = None
    lease_s: float = Field(300.0, gt=0)
    timeout_s: float = Field(30.0, gt=0)
    max_response_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    retry: PpsRetrySettings = PpsRetrySettings()

    @property
    def inquiry_div(self) -> int:
        return 3 if self.inquiry == "change" else 1

    def service_key(self) -> SecretStr | None:
        """The environment variable's key, else the configured one."""
        if self.key_env and os.environ.get(self.key_env):
            return SecretStr(os.environ[self.key_env])
        return self.key

    def sandbox_key_elsewhere(self) -> bool:
        """A sandbox test key (``sandbox-…``, :mod:`connectors.key_policy`) would be sent to a service that
        is not a sandbox."""
        key = self.service_key()
        return key is not None and is_sandbox_key(key.get_secret_value()) and not is_sandbox_endpoint(self.endpoint)

    @model_validator(mode="after")
    def _usable_when_enabled(self) -> PpsSettings:
        if self.enabled and not self.org_id:
            raise ValueError("pps.enabled needs pps.org_id: the organisation the notices are imported as")
        if self.enabled and self.sandbox_key_elsewhere():
            raise ValueError(f"pps.endpoint is not the sandbox but the key is the sandbox's: set {self.key_env}")
        unknown = [op for op in self.operations if not op.startswith("getBidPblancListInfo")]
        if unknown:
            raise ValueError(f"pps.operations names operations that are not bid-notice lists: {unknown}")
        return self
