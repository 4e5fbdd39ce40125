"""Mapping files are checked when the hub starts, not at the first fetch: a broken one stops the
start-up with the file and the field named."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.bootstrap import bootstrap
from hub.config import Settings
from hub.suppliers.wiring import check_sources
from mappings.engine import MappingError
from tests.support.environment import ROOT


def test_a_broken_mapping_file_stops_the_start_naming_file_and_field(tmp_path: Path, sqlite_url: str) -> None:
    broken = tmp_path / "nts.yaml"
    text = (ROOT / "mappings" / "nts.yaml").read_text(encoding="utf-8")
    broken.write_text(text.replace("transform: [strip, empty_as_null]", "transform: [strip, no_such_transform]", 1),
                      encoding="utf-8")
    settings = Settings(database={"url": sqlite_url}, connectors={"nts": {"mapping": str(broken)}})
    with pytest.raises(MappingError) as error:
        bootstrap(settings, migrate=True)
    message = str(error.value)
    assert str(broken) in message
    assert "no_such_transform" in message and "status_code" in message


def test_the_shipped_sources_pass_the_start_up_check(sqlite_url: str) -> None:
    # national_certs has no real counterpart: off unless a deployment (or the demo) switches it on
    assert check_sources(Settings().connectors) == ["vies", "nts", "gleif", "companies_house", "iaf"]
    with_national = Settings(connectors={"national_certs": {"enabled": True}}).connectors  # type: ignore[dict-item]
    assert check_sources(with_national) == ["vies", "nts", "gleif", "companies_house", "iaf", "national_certs"]
    without_iaf = Settings(connectors={"iaf": {"enabled": False}}).connectors  # type: ignore[dict-item]
    assert check_sources(without_iaf) == ["vies", "nts", "gleif", "companies_house"]
    hub = bootstrap(Settings(database={"url": sqlite_url}), migrate=True)
    try:
        assert hub.database_ready()
    finally:
        hub.close()


def test_publication_settings_live_beside_delivery_settings(sqlite_url: str) -> None:
    settings = Settings(database={"url": sqlite_url},
                        syndication={"time_scale": 0.5, "publication": {"ocid_prefix": "ocds-abc123"}})
    hub = bootstrap(settings, migrate=True)
    try:
        worker = hub.make_worker()
        worker.start()  # the delivery dispatcher validates the same section in its constructor
        assert any(t.is_alive() for t in worker.threads)
        assert settings.syndication.publication.ocid_prefix == "ocds-abc123"
        assert settings.syndication.time_scale == 0.5
    finally:
        hub.close()


def test_an_unknown_syndication_key_stops_the_start(sqlite_url: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="retry_shedule_s"):
        Settings(database={"url": sqlite_url}, syndication={"retry_shedule_s": [1]})


def test_a_broken_notice_format_mapping_stops_the_start(monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> None:
    from hub.notices import formats

    class Broken:
        name = "broken"

        def check(self) -> None:
            raise MappingError("mappings/broken_notice.yaml: notices.fields.titel: unknown target")

    monkeypatch.setitem(formats.FORMATS, "broken", Broken())  # type: ignore[arg-type]
    with pytest.raises(MappingError, match=r"broken_notice\.yaml: notices\.fields\.titel"):
        bootstrap(Settings(database={"url": sqlite_url}), migrate=True)
