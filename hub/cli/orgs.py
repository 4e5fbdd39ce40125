"""``g2bhub orgs``: the operator's way to onboard organisations and manage their API keys before (or
without) the HTTP API. Changes go through the message bus like any API call, so they are audited once a
worker relays the outbox."""

from __future__ import annotations

from typing import Any

import typer

from hub.cli._common import echo_json, load_settings, open_hub, print_table, service_errors
from hub.organisations.model import IssuedKey, Organisation, OrgKind

app = typer.Typer(help="Organisations and their API keys.", no_args_is_help=True)

KEY_WARNING = "Store this key now: it is kept only as a hash and will not be shown again."


def _print_key(issued: IssuedKey) -> None:
    typer.echo(f"key id:  {issued.key.id}")
    typer.echo(f"scopes:  {' '.join(issued.key.scopes)}")
    typer.echo(f"api key: {issued.plaintext}")
    typer.secho(KEY_WARNING, fg=typer.colors.YELLOW, err=True)


def _kind(org: Organisation) -> str:
    """Loaded rows carry the kind as a plain string; fresh aggregates as the enum."""
    return OrgKind(org.kind).value


def _key_json(issued: IssuedKey) -> dict[str, Any]:
    return {"key_id": issued.key.id, "scopes": issued.key.scopes, "api_key": issued.plaintext}


@app.command()
def create(
    name: str = typer.Argument(..., help="Display name of the organisation."),
    kind: OrgKind = typer.Option(..., "--kind", help="What the organisation does at the hub."),
    label: str = typer.Option("initial", "--label", help="Label of the first API key."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Create an organisation and print its id and first API key (once)."""
    from hub.organisations.commands import CreateOrganisation

    settings = load_settings()
    with open_hub(settings) as hub, service_errors():
        org, issued = hub.bus.handle(CreateOrganisation(name=name, kind=kind, key_label=label))
    if as_json:
        echo_json({"id": org.id, "name": org.name, "kind": _kind(org), **_key_json(issued)})
        return
    typer.echo(f"organisation {org.id} ({_kind(org)}) {org.name!r} created")
    _print_key(issued)


@app.command("list")
def list_orgs(
    kind: OrgKind | None = typer.Option(None, "--kind", help="Only organisations of this kind."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List organisations with their active API keys."""
    settings = load_settings()
    with open_hub(settings) as hub, hub.uow() as uow:
        rows = [
            {
                "id": org.id,
                "kind": _kind(org),
                "name": org.name,
                "created_at": org.created_at.isoformat(timespec="seconds"),
                "enabled": org.disabled_at is None,
                "active_keys": [k.id for k in org.api_keys if k.active],
            }
            for org in uow.organisations.list(kind)
        ]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        typer.echo("no organisations" + (f" of kind {kind.value}" if kind else ""))
        return
    print_table(
        ["id", "kind", "name", "created", "state", "active keys"],
        [
            [
                r["id"],
                r["kind"],
                r["name"],
                r["created_at"],
                "enabled" if r["enabled"] else "disabled",
                ",".join(r["active_keys"]) or "-",
            ]
            for r in rows
        ],
    )


@app.command("issue-key")
def issue_key(
    org_id: str = typer.Argument(..., help="Organisation id."),
    label: str = typer.Option("", "--label", help="What the key is for (shown in listings)."),
    scope: list[str] | None = typer.Option(
        None, "--scope", help="Restrict the key to these scopes (repeatable); default: all the kind allows."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Issue another API key for an organisation and print it (once)."""
    from hub.organisations.commands import IssueApiKey

    settings = load_settings()
    with open_hub(settings) as hub, service_errors():
        issued = hub.bus.handle(IssueApiKey(org_id=org_id, label=label, scopes=scope or None))
    if as_json:
        echo_json({"org_id": org_id, **_key_json(issued)})
        return
    _print_key(issued)


@app.command("revoke-key")
def revoke_key(
    org_id: str = typer.Argument(..., help="Organisation id."),
    key_id: str = typer.Argument(
        ..., help="Key id (the part after g2b_ in the key, or from `orgs list`); the whole key works too."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Revoke an API key; requests with it are refused from now on."""
    from hub.organisations.commands import RevokeApiKey
    from hub.organisations.model import shown_key_id

    settings = load_settings()
    with open_hub(settings) as hub, service_errors():
        hub.bus.handle(RevokeApiKey(org_id=org_id, key_id=key_id))
    shown = shown_key_id(key_id)  # a pasted whole key is named by its id, never echoed
    if as_json:
        echo_json({"org_id": org_id, "key_id": shown, "revoked": True})
        return
    typer.echo(f"key {shown} of organisation {org_id} revoked")


def _state_json(org: Organisation) -> dict[str, Any]:
    disabled_at = org.disabled_at.isoformat(timespec="seconds") if org.disabled_at else None
    return {"id": org.id, "name": org.name, "enabled": org.disabled_at is None, "disabled_at": disabled_at}


@app.command()
def disable(
    org_id: str = typer.Argument(..., help="Organisation id."),
    reason: str = typer.Option("", "--reason", help="Why (kept in the audit log)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Refuse every API key of an organisation (401) until `orgs enable`; its keys and data stay."""
    from hub.organisations.commands import DisableOrganisation

    settings = load_settings()
    with open_hub(settings) as hub, service_errors():
        org = hub.bus.handle(DisableOrganisation(org_id=org_id, reason=reason))
    if as_json:
        echo_json(_state_json(org))
        return
    typer.echo(f"organisation {org_id} disabled: its API keys are refused until `g2bhub orgs enable {org_id}`")


@app.command()
def enable(
    org_id: str = typer.Argument(..., help="Organisation id."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Accept an organisation's (unrevoked) API keys again after `orgs disable`."""
    from hub.organisations.commands import EnableOrganisation

    settings = load_settings()
    with open_hub(settings) as hub, service_errors():
        org = hub.bus.handle(EnableOrganisation(org_id=org_id))
    if as_json:
        echo_json(_state_json(org))
        return
    typer.echo(f"organisation {org_id} enabled")
