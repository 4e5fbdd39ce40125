"""``g2bhub identifiers``: the operator settles disputes over who holds an identifier (docs/identifier-control.md).
Changes go through the message bus like the API's, as the operator organisation (the only one, or the one
given with ``--operator``), so each lands in the audit trail with its reason."""

from __future__ import annotations

from typing import Any

import typer

from hub.cli._common import echo_json, fail, load_settings, open_hub, service_errors
from hub.organisations.model import OrgKind

app = typer.Typer(help="Claims on supplier identifiers: show, release, transfer.", no_args_is_help=True)

OPERATOR_HELP = "Operator organisation acting (default: the only operator organisation)."


def _operator(hub: Any, given: str | None) -> str:
    with hub.uow() as uow:
        operators = [str(o.id) for o in uow.organisations.list(OrgKind.OPERATOR)]
    if given is not None:
        if given not in operators:
            fail(f"{given} is not an operator organisation")
        return given
    if len(operators) != 1:
        fail(f"{len(operators)} operator organisations: say which with --operator")
    return str(operators[0])


def _claim_json(claim: Any) -> dict[str, Any]:
    return {"scheme": claim.scheme, "identifier": claim.identifier, "org_id": claim.org_id,
            "claimed_at": claim.claimed_at.isoformat(),
            "proven_at": claim.proven_at.isoformat() if claim.proven_at else None, "proof_method": claim.proof_method}


def _print(claim: dict[str, Any], as_json: bool) -> None:
    if as_json:
        echo_json(claim)
        return
    proven = f"proven {claim['proven_at']} ({claim['proof_method']})" if claim["proven_at"] else "not proven"
    typer.echo(f"{claim['scheme']}:{claim['identifier']}  held by {claim['org_id']}  since {claim['claimed_at']}  "
               f"{proven}")


@app.command()
def show(
    scheme: str = typer.Argument(..., help="Identifier scheme (kr_brn, eu_vat, lei, gb_company_number, ...)."),
    identifier: str = typer.Argument(..., help="The identifier, in any accepted spelling."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Who holds an identifier and whether control is proven."""
    from hub.spine.errors import NotFound
    from hub.suppliers.identifiers import validate_identifiers

    settings = load_settings()
    with open_hub(settings) as hub, service_errors():
        value = validate_identifiers({scheme: identifier})[scheme]
        with hub.uow() as uow:
            claim = uow.suppliers.identifier_claim(scheme, value)
            if claim is None:
                raise NotFound("identifier claim", f"{scheme}:{value}")
            found = _claim_json(claim)
    _print(found, as_json)


@app.command()
def release(
    scheme: str = typer.Argument(..., help="Identifier scheme."),
    identifier: str = typer.Argument(..., help="The identifier."),
    reason: str = typer.Option(..., "--reason", help="Why (recorded in the audit trail)."),
    operator: str | None = typer.Option(None, "--operator", help=OPERATOR_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Free an identifier: its holder's credentials for it stop counting; another organisation may register it."""
    from hub.suppliers.commands import ReleaseIdentifierClaim

    settings = load_settings()
    with open_hub(settings) as hub, service_errors():
        claim = hub.bus.handle(ReleaseIdentifierClaim(scheme=scheme, identifier=identifier, reason=reason,
                                                      actor_org_id=_operator(hub, operator)))
        found = _claim_json(claim)
    if as_json:
        echo_json({"released": found})
        return
    typer.echo(f"released {found['scheme']}:{found['identifier']} (was held by {found['org_id']})")


@app.command()
def transfer(
    scheme: str = typer.Argument(..., help="Identifier scheme."),
    identifier: str = typer.Argument(..., help="The identifier."),
    to_org: str = typer.Option(..., "--to", help="The supplier organisation that gets it (it must still prove)."),
    reason: str = typer.Option(..., "--reason", help="Why (recorded in the audit trail)."),
    operator: str | None = typer.Option(None, "--operator", help=OPERATOR_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Hand an identifier to another supplier organisation, unproven."""
    from hub.suppliers.commands import TransferIdentifierClaim

    settings = load_settings()
    with open_hub(settings) as hub, service_errors():
        claim = hub.bus.handle(TransferIdentifierClaim(scheme=scheme, identifier=identifier, to_org_id=to_org,
                                                       reason=reason, actor_org_id=_operator(hub, operator)))
        found = _claim_json(claim)
    _print(found, as_json)
