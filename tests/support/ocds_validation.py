"""Offline validation of OCDS packages against the official 1.1 schemas.

The release package schema refers to the release schema by its absolute URL; the validator must never
fetch it, so both local copies are registered under their own ``id`` URLs in a ``referencing``
registry and any other remote reference fails loudly instead of reaching the network.
There is no local record package schema, so a record package has its envelope checked here and its
compiled release and embedded releases validated against the release schema.

The schemas are not in this repository; they sit beside it in ``../shared/contracts/ocds`` (on
developer machines and in CI alike). Tests that need them take :func:`required_schema_dir`, which skips
without them on a developer machine and fails with CI=true, so a CI run can never pass by not checking.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft4Validator, FormatChecker
from referencing import Registry
from referencing.exceptions import NoSuchResource
from referencing.jsonschema import DRAFT4

from tests.support.environment import ROOT, service_missing

__all__ = ["SCHEMA_DIR_ENV", "ocds_schema_dir", "required_schema_dir", "validate_package"]

SCHEMA_DIR_ENV = "OCDS_SCHEMA_DIR"
DEFAULT_SCHEMA_DIR = ROOT.parent / "shared" / "contracts" / "ocds"
_RELEASE = "release-schema.json"
_PACKAGE = "release-package-schema.json"
_RECORD_ENVELOPE = ("uri", "publisher", "publishedDate", "records", "version")


def ocds_schema_dir(explicit: str | Path | None = None) -> Path | None:
    """The schema directory: the argument, else ``$OCDS_SCHEMA_DIR``, else ``../shared/contracts/ocds``
    beside the repository; None when the chosen directory lacks the schemas."""
    chosen = explicit or os.environ.get(SCHEMA_DIR_ENV) or DEFAULT_SCHEMA_DIR
    path = Path(chosen)
    return path if (path / _RELEASE).is_file() and (path / _PACKAGE).is_file() else None


def required_schema_dir() -> Path:
    """The schema directory for a test that validates; skips the test without it, fails it under CI=true."""
    directory = ocds_schema_dir()
    if directory is None:
        chosen = os.environ.get(SCHEMA_DIR_ENV) or DEFAULT_SCHEMA_DIR
        service_missing("OCDS schemas", f"no {_RELEASE} and {_PACKAGE} in {chosen} (set ${SCHEMA_DIR_ENV})")
    assert directory is not None
    return directory


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))  # ValueError → invalid
    return "T" in value and parsed.tzinfo is not None


def _is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return bool(parts.scheme) and (bool(parts.netloc) or parts.scheme in {"urn", "mailto"})


def _format_checker() -> FormatChecker:
    """jsonschema checks date-time and uri only with optional packages; check them here instead,
    because the schema's dates and URLs are exactly what consumers parse."""
    checker = FormatChecker()
    checker.checks("date-time", raises=ValueError)(_is_date_time)
    checker.checks("uri")(_is_uri)
    return checker


def _refuse_remote(uri: str) -> Any:
    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]


@lru_cache(maxsize=4)
def _validators(schema_dir: Path) -> tuple[Draft4Validator, Draft4Validator]:
    release = json.loads((schema_dir / _RELEASE).read_text(encoding="utf-8"))
    package = json.loads((schema_dir / _PACKAGE).read_text(encoding="utf-8"))
    registry: Registry[Any] = Registry(retrieve=_refuse_remote).with_resources(  # type: ignore[call-arg]
        [(release["id"], DRAFT4.create_resource(release)), (package["id"], DRAFT4.create_resource(package))]
    )
    checker = _format_checker()
    return (
        Draft4Validator(release, registry=registry, format_checker=checker),
        Draft4Validator(package, registry=registry, format_checker=checker),
    )


def validate_package(package: Mapping[str, Any], schema_dir: str | Path | None = None) -> list[str]:
    """Every schema violation in a release or record package as ``path: message``; empty when valid.
    Raises FileNotFoundError when no schema directory is available."""
    directory = ocds_schema_dir(schema_dir)
    if directory is None:
        raise FileNotFoundError(f"OCDS schemas not found (set {SCHEMA_DIR_ENV} or pass schema_dir)")
    release_validator, package_validator = _validators(directory)
    if "records" not in package:
        return _errors(package_validator, package, "")
    problems = [f"{name}: required" for name in _RECORD_ENVELOPE if name not in package]
    for index, record in enumerate(package.get("records", [])):
        where = f"records/{index}"
        if not record.get("ocid"):
            problems.append(f"{where}/ocid: required")
        if "compiledRelease" in record:
            problems += _errors(release_validator, record["compiledRelease"], f"{where}/compiledRelease")
        for position, release in enumerate(record.get("releases", [])):
            if "url" in release and "ocid" not in release:  # a linked release
                continue
            problems += _errors(release_validator, release, f"{where}/releases/{position}")
    return problems


def _errors(validator: Draft4Validator, instance: Any, base: str) -> list[str]:
    found = []
    for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path)):
        path = "/".join(str(part) for part in error.absolute_path)
        found.append(f"{base}/{path}: {error.message}" if base or path else error.message)
    return found
