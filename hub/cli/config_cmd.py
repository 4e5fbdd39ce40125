"""``g2bhub config show``: the effective settings after layering, safe to paste into a ticket;
``g2bhub config check``: the same validation a start makes, and nothing else."""

from __future__ import annotations

import re
from typing import Any

import typer
import yaml

from hub.cli._common import load_settings
from hub.config import Settings, known_secrets, redact_url
from hub.spine.observability.logging import Redactor

app = typer.Typer(help="Effective configuration.", no_args_is_help=True)

# ``key`` alone is a connector's inline API key; ``key_env`` / ``key_file`` only say where one lives.
_SECRET_KEY = re.compile(r"(password|passwd|secret|token|api_?key|credential|private|authorization)|^key$",
                         re.IGNORECASE)
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def redact(value: Any, key: str = "", redactor: Redactor | None = None) -> Any:
    """Hide secrets anywhere in the tree, by name and by value. By name: text under secret-sounding keys
    and every value under a ``headers`` mapping (``SecretStr`` fields dump masked already). By value: URL
    passwords, query values of key parameters (``?serviceKey=***``, ``?sslpassword=***``), and any text
    holding a known secret (``redactor``). Numbers and flags (``secret_overlap_s``,
    ``allow_private_targets``) are settings, not secrets, and stay visible."""
    redactor = redactor or Redactor()
    if isinstance(value, dict):
        if key == "headers":
            return {k: ("***" if isinstance(v, str) and v else redact(v, str(k), redactor)) for k, v in value.items()}
        return {k: redact(v, str(k), redactor) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, key, redactor) for v in value]
    if not isinstance(value, str):
        return value
    if _SECRET_KEY.search(key) and value:
        return "***"
    if _URL.match(value):
        try:
            value = redact_url(value)
        except ValueError:
            return "***"
    return redactor.redact(value)


def effective(settings: Settings) -> dict[str, Any]:
    data: dict[str, Any] = settings.model_dump(mode="json", by_alias=True)
    redactor = Redactor(settings.logging.query_params, known_secrets(settings))
    return dict(redact(data, redactor=redactor))


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


@app.command()
def check() -> None:
    """Validate the configuration as a start would (settings, mapping files, sandbox keys aimed at real
    services) without touching the database: one line per problem and exit code 1, or exit code 0."""
    from hub.bootstrap import check_configuration
    from hub.cli._common import config_errors

    settings = load_settings()
    with config_errors():
        check_configuration(settings)
    typer.echo("configuration is valid")
