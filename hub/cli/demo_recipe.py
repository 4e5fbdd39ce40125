"""The demo's webhook recipe: loopback webhook targets allowed (the demo only), and banner lines to paste
that subscribe the demo agency to ``g2bhub sandbox receiver`` on this machine, publish a notice with the
demo institution's key, and show the receiver printing the verified delivery.

The same recipe, with the keys as shell variables, is in the README and docs/subscriptions.md; the
walkthrough test (tests/e2e/test_walkthrough.py) runs the README's copy."""

from __future__ import annotations

import json
from pathlib import Path

from hub.cli.demo_components import DemoComponent, DemoContext, DemoOrganisations
from hub.config import Settings
from hub.organisations.model import OrgKind

__all__ = ["RECEIVER_PORT", "SAMPLE_NOTICE", "WebhookRecipe", "webhook_recipe_lines"]

RECEIVER_PORT = 8901

# A notice small enough for one line; its deadline far enough ahead for any demo.
SAMPLE_NOTICE = {
    "title": "Street lighting maintenance in Mapo-gu", "category": "services",
    "classifications": [{"scheme": "CPV", "code": "50232100"}], "delivery_region": "KR-11",
    "estimated_value": "120000000", "currency": "KRW",
    "dates": {"published": "2026-01-05T09:00:00+09:00", "submission_deadline": "2030-12-31T10:00:00+09:00"},
}


def webhook_recipe_lines(base_url: str, agency_key: str, institution_key: str,
                         receiver_port: int = RECEIVER_PORT) -> list[str]:
    """Shell lines that try a webhook subscription end to end against the demo at ``base_url``."""
    api = f"{base_url}/api/v1"
    subscription = json.dumps({"name": "demo receiver",
                               "channel": {"type": "webhook", "url": f"http://127.0.0.1:{receiver_port}/"}})
    notice = json.dumps(SAMPLE_NOTICE, ensure_ascii=False)
    return [
        "# demo only: webhook targets on this machine are allowed (syndication.allow_loopback_targets)",
        "# 1. subscribe the demo agency to a receiver here; the answer carries its signing secret, once",
        f"export G2BHUB_RECEIVER_SECRET=$(curl -s -X POST -H 'Authorization: Bearer {agency_key}' "
        f"-H 'Content-Type: application/json' -d '{subscription}' {api}/subscriptions "
        """| python3 -c 'import json, sys; print(json.load(sys.stdin)["secret"])')""",
        "# 2. the receiver verifies each delivery's signature and prints it (Ctrl+C or `kill %1` stops it)",
        f".venv/bin/g2bhub sandbox receiver --port {receiver_port} &",
        "# 3. publish a notice with the institution key; the receiver prints `verified  notice.published …`",
        f"curl -s -X POST -H 'Authorization: Bearer {institution_key}' -H 'Content-Type: application/json' "
        f"-d '{notice}' {api}/notices",
    ]


class WebhookRecipe(DemoComponent):
    """Allows loopback webhook targets in the demo and adds the recipe to the banner."""

    name = "webhook-recipe"

    def __init__(self, components: list[DemoComponent]) -> None:
        self.components = components

    def configure(self, settings: Settings, data_dir: Path) -> Settings:
        syndication = settings.syndication.model_copy(update={"allow_loopback_targets": True})
        return settings.model_copy(update={"syndication": syndication})

    def start(self, ctx: DemoContext) -> None:
        organisations = next((c for c in self.components if isinstance(c, DemoOrganisations)), None)
        if organisations is None or not {OrgKind.AGENCY, OrgKind.INSTITUTION} <= organisations.keys.keys():
            return
        agency_key = organisations.keys[OrgKind.AGENCY][2]
        institution_key = organisations.keys[OrgKind.INSTITUTION][2]
        ctx.add_section("Webhooks (a receiver on this machine)",
                        webhook_recipe_lines(ctx.base_url, agency_key, institution_key))
