"""OCDS 1.1 release packages as an inbound format: another portal, or an institution's own system,
pushes the releases of its tenders and the hub keeps them as notices and versions.

The field correspondence lives in ``mappings/ocds_release.yaml``; this module checks the package
envelope, keeps only tender releases (planning, award and contract releases are not notices) and reads
what OCDS carries as free text: ``eligibilityCriteria`` (the hub's own JSON requirement list when the
package came from a hub, else a stated condition with the text) and a document digest written as
``sha256:<hex>`` in its description (how :mod:`hub.notices.ocds` publishes it). A release package the
hub serves can therefore be imported into another hub unchanged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from hub.notices.formats.base import ContentTooLarge, DocumentError, ImportedNotice
from hub.notices.formats.mapped import load_notice_mapping, mapping_path, read_notice
from hub.notices.publication import PublicationSettings

__all__ = ["MAPPING", "OcdsFormat"]

MAPPING = "ocds_release.yaml"
_NOT_A_TENDER = "only tender releases (tender, tenderUpdate, tenderAmendment, tenderCancellation) are notices"
_DIGEST = re.compile(r"^sha256:([0-9a-fA-F]{64})$")


class OcdsFormat:
    name = "ocds"
    report_key = "releases"
    problem_key = "field"
    order_field = "date"

    def check(self) -> None:
        load_notice_mapping(mapping_path(MAPPING))

    def read(self, document: Any, options: Mapping[str, str], limits: PublicationSettings) -> list[ImportedNotice]:
        releases = _releases(document)
        if len(releases) > limits.pps_max_items:
            raise ContentTooLarge(f"at most {limits.pps_max_items} releases per import")
        mapping = load_notice_mapping(mapping_path(MAPPING))
        items = []
        for index, release in enumerate(releases):
            if not isinstance(release, dict):
                items.append(ImportedNotice({"index": index}, problems=(("releases", "must be an object"),)))
                continue
            ref = {"index": index, "ocid": str(release.get("ocid", "")), "release_id": str(release.get("id", ""))}
            tag = release.get("tag")
            tags: list[Any] = tag if isinstance(tag, list) else []
            if not any(str(tag).startswith("tender") for tag in tags):
                items.append(ImportedNotice(ref, problems=(("tag", _NOT_A_TENDER),)))
                continue
            items.append(read_notice(mapping, release, ref, refine=_refine, pointer=f"releases[{index}]"))
        return items


def _releases(document: Any) -> list[Any]:
    if not isinstance(document, dict):
        raise DocumentError([("", "expected an OCDS release package (an object with releases)")])
    if "records" in document and "releases" not in document:
        raise DocumentError([("records", "send a release package; record packages are not imported")])
    releases = document.get("releases")
    if not isinstance(releases, list):
        raise DocumentError([("releases", "expected an array of releases")])
    version = document.get("version")
    if version is not None and not str(version).startswith("1."):
        raise DocumentError([("version", f"OCDS {version} is not supported; send OCDS 1.1")])
    return releases


def _refine(data: dict[str, Any]) -> None:
    """Free-text OCDS fields → the hub's structured ones; a classification repeated across items once."""
    classifications = data.get("classifications")
    if isinstance(classifications, list):
        unique: dict[str, Any] = {}
        for entry in classifications:
            unique.setdefault(json.dumps(entry, sort_keys=True, default=str), entry)
        data["classifications"] = list(unique.values())
    criteria = data.pop("eligibility", None)
    if isinstance(criteria, str):
        data["eligibility"] = _requirements(criteria)
    for document in data.get("documents") or ():
        description = document.pop("description", None) if isinstance(document, dict) else None
        if isinstance(description, str) and (found := _DIGEST.match(description.strip())):
            document["sha256"] = found.group(1).lower()


def _requirements(text: str) -> list[Any]:
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):  # nested past the parser's stack: not requirements either
        parsed = None
    if isinstance(parsed, list) and all(isinstance(r, dict) and "kind" in r for r in parsed):
        return parsed
    return [{"kind": "stated_condition", "condition": "eligibility_criteria", "details": {"text": text[:4000]}}]
