"""Mapping files are checked when the hub starts, not at the first fetch: a broken one stops the
start-up with the file and the field named."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.bootstrap import bootstrap
from hub.config import Settings
from hub.suppliers.wiring import check_sources
from mappings.engine import MappingError
from tests.conftest import ROOT


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
    assert check_sources({}) == ["vies", "nts", "gleif", "companies_house", "iaf", "national_certs"]
    assert check_sources({"iaf": {"enabled": False}}) == ["vies", "nts", "gleif", "companies_house",
                                                          "national_certs"]
    hub = bootstrap(Settings(database={"url": sqlite_url}), migrate=True)
    try:
        assert hub.database_ready()
    finally:
        hub.close()
