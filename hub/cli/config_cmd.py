"""``g2bhub config show``: the effective settings after layering, safe to paste into a ticket."""

from __future__ import annotations

import re
from typing import Any

import typer
import yaml

from hub.cli._common import load_settings
from hub.config import Settings, redact_url

app = typer.Typer(help="Effective configuration.", no_args_is_help=True)

# ``key`` alone is a connector's inline API key; ``key_env`` / ``key_file`` only say where one lives.
_SECRET_KEY = re.compile(r"(password|passwd|secret|token|api_?key|credential|private|authorization)|^key$",
                         re.IGNORECASE)
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def redact(value: Any, key: str = "") -> Any:
    """Hide secrets anywhere in the tree: URL passwords, and text under secret-sounding keys. ``SecretStr``
    fields dump masked already; the names catch free-form maps (a connector's ``headers``). Numbers and
    flags (``secret_overlap_s``, ``allow_private_targets``) are settings, not secrets, and stay visible."""
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, key) for v in value]
    if _SECRET_KEY.search(key) and isinstance(value, str) and value:
        return "***"
    if isinstance(value, str) and _URL.match(value):
        try:
            return redact_url(value)
        except ValueError:
            return "***"
    return value


def effective(settings: Settings) -> dict[str, Any]:
    data: dict[str, Any] = settings.model_dump(mode="json", by_alias=True)
    return dict(redact(data))


@app.command()
def show(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of YAML.")) -> None:
    """Print the effective settings (defaults < G2BHUB_CONFIG file < G2BHUB_* env), secrets redacted."""
    settings = load_settings()
    data = effective(settings)
    if as_json:
        from hub.cli._common import echo_json

        echo_json(data)
        return
    typer.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip())
