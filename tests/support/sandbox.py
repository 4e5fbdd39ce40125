"""What the supplier tests share: a hub whose connectors point at a running sandbox, with short
backoffs and no retry sleeps, and identifiers picked from the sandbox's labelled dataset."""

from __future__ import annotations

from typing import Any

import httpx

from connectors.sandbox.server import SandboxServer

PREFIX = {"vies": "vies", "nts": "nts", "gleif": "gleif", "companies_house": "companies-house", "iaf": "iaf",
          "national_certs": "national-certs"}


def connector_overrides(sandbox: SandboxServer) -> dict[str, Any]:
    """Endpoints and keys of the running twins; one attempt per call (the hub's own backoff retries)."""
    ep = sandbox.endpoints
    fast = {"retry": {"max_attempts": 1}, "breaker": {"failure_threshold": 50, "reset_timeout_s": 1},
            "timeouts": {"connect_s": 2, "read_s": 5, "write_s": 5, "pool_s": 5}}
    return {
        "vies": {"endpoint": ep["vies_endpoint"], **fast},
        "nts": {"endpoint": ep["nts_base"], "key": sandbox.api_keys["nts"], **fast},
        "gleif": {"endpoint": ep["gleif_base"], **fast},
        "companies_house": {"endpoint": ep["companies_house_base"], "key": sandbox.api_keys["companies_house"],
                            **fast},
        "iaf": {"endpoint": ep["iaf_base"], "key": sandbox.api_keys["iaf"], **fast},
        "national_certs": {"endpoint": ep["national_certs_endpoint"], "enabled": True, **fast},
    }


# Retry at once in tests: the scheduler run (not a clock) decides when.
FAST_SUPPLIERS: dict[str, Any] = {
    "backoff": {"initial_s": 0, "jitter_ratio": 0},
    "fetch": {"deadline_s": 15},
    "scheduler": {"interval_s": 0.2},
}


# The twins cost nothing: tests that register hundreds of suppliers at once raise the upstream budget
# that protects the hub's real keys (tests/security/test_quotas.py tests that budget itself).
SANDBOX_QUOTAS: dict[str, Any] = {"upstream_default": {"limit": 100_000, "window_s": 60}}


def control(sandbox: SandboxServer, system: str, what: str, method: str = "GET", body: Any = None) -> Any:
    response = httpx.request(method, f"{sandbox.base_url}/{PREFIX[system]}/_control/{what}", json=body, timeout=5)
    response.raise_for_status()
    return response.json() if response.content else None


def outage(sandbox: SandboxServer, system: str, on: bool = True) -> None:
    control(sandbox, system, "faults", "POST", {"outage": on})


def reset(sandbox: SandboxServer) -> None:
    # the twin answers from a thread of the test process, which a loaded machine slows
    httpx.post(f"{sandbox.base_url}/_control/reset", timeout=30).raise_for_status()


def first_with(sandbox: SandboxServer, scheme: str, tag: str | None = None, *, skip: int = 0) -> str:
    """An identifier of ``scheme`` from a supplier with scenario ``tag`` (any when None)."""
    found = [s.identifiers[scheme] for s in sandbox.dataset.suppliers
             if scheme in s.identifiers and (tag is None or any(t.startswith(tag) for t in s.scenario))]
    return found[skip]


def full_identifiers(sandbox: SandboxServer, skip: int = 0) -> dict[str, str]:
    """One identifier of every scheme, each from a healthy record (a composite supplier: the hub does not
    care that the sandbox knows them as different companies)."""
    ds = sandbox.dataset
    brns = [s.identifiers["kr_brn"] for s in ds.suppliers if "kr_brn" in s.identifiers and "nts:active" in s.scenario
            and ds.national_certificates_of(s.identifiers["kr_brn"])]
    iafs = [s.identifiers["iaf_ce_id"] for s in ds.suppliers if "iaf_ce_id" in s.identifiers
            and any(c.status == "active" for c in ds.iaf_certificates_of(s.identifiers["iaf_ce_id"]))]
    return {
        "kr_brn": brns[skip],
        "eu_vat": first_with(sandbox, "eu_vat", "vies:valid", skip=skip),
        "lei": first_with(sandbox, "lei", "gleif:issued", skip=skip),
        "gb_company_number": first_with(sandbox, "gb_company_number", "companies_house:active", skip=skip),
        "iaf_ce_id": iafs[skip],
    }
