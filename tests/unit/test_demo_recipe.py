"""The demo banner's webhook recipe: the demo's own keys and URL filled in, the loopback allowance stated,
and the same notice and subscription as the README's walkthrough."""

from __future__ import annotations

import json
from pathlib import Path

from hub.cli.demo_components import DemoContext, DemoOrganisations
from hub.cli.demo_recipe import SAMPLE_NOTICE, WebhookRecipe, webhook_recipe_lines
from hub.config import Settings
from hub.organisations.model import OrgKind
from tests.support.environment import ROOT


def test_the_lines_carry_the_keys_the_url_and_the_port() -> None:
    lines = webhook_recipe_lines("http://127.0.0.1:9000", "g2b_agency", "g2b_institution", receiver_port=8999)
    text = "\n".join(lines)
    assert "allow_loopback_targets" in lines[0] and "demo only" in lines[0]
    subscribe = next(line for line in lines if "/subscriptions" in line)
    assert subscribe.startswith("export G2BHUB_RECEIVER_SECRET=$(curl -s -X POST -H 'Authorization: Bearer g2b_agency'")
    assert '"url": "http://127.0.0.1:8999/"' in subscribe and "http://127.0.0.1:9000/api/v1/subscriptions" in subscribe
    assert ".venv/bin/g2bhub sandbox receiver --port 8999 &" in lines
    publish = lines[-1]
    assert "Bearer g2b_institution" in publish and publish.endswith("http://127.0.0.1:9000/api/v1/notices")
    assert json.dumps(SAMPLE_NOTICE, ensure_ascii=False) in publish
    assert "<" not in text.replace("<id>", "")  # no placeholders to fill in


def test_the_readme_publishes_the_same_notice() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert json.dumps(SAMPLE_NOTICE, ensure_ascii=False) in readme


def test_the_section_uses_the_demo_organisations_keys(tmp_path: Path) -> None:
    organisations = DemoOrganisations()
    for kind in OrgKind:
        organisations.keys[kind] = (f"org-{kind.value}", kind.value, f"g2b_{kind.value}")
    ctx = DemoContext(hub=None, settings=Settings(), data_dir=tmp_path, base_url="http://127.0.0.1:8000")
    WebhookRecipe([organisations]).start(ctx)
    [(title, lines)] = ctx.sections
    assert "Webhooks" in title
    assert lines == webhook_recipe_lines("http://127.0.0.1:8000", "g2b_agency", "g2b_institution")
