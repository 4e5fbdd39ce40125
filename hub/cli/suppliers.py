"""``g2bhub suppliers``: the operator's way back for credential fetch slots the hub gave up on.

A slot the source refused (``failed_permanently``) is never fetched again by the scheduler; once the
cause is fixed (a mapping updated, an identifier corrected at the source, a hostile gateway gone) the
operator puts it back to ``pending`` here, one supplier at a time or a whole system at once. The change
goes through the message bus and lands in the audit trail with who asked and why."""

from __future__ import annotations

import getpass

import typer

from hub.cli._common import echo_json, fail, load_settings, open_hub, print_table, service_errors

app = typer.Typer(help="Suppliers' credential fetch slots.", no_args_is_help=True)


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return "unknown"


@app.command()
def retry(
    supplier_id: str | None = typer.Argument(
        None, help="The supplier whose slots to put back to pending (omit with --system and --failed)."),
    system: str | None = typer.Option(None, "--system", help="Only this upstream system's slot (e.g. nts)."),
    failed: bool = typer.Option(
        False, "--failed", help="Without a supplier: every failed_permanently slot of --system, all suppliers."),
    not_found: bool = typer.Option(False, "--not-found", help="With --failed: the system's not_found slots too."),
    reason: str = typer.Option(..., "--reason", help="Why (what was fixed); kept in the audit trail."),
    by: str | None = typer.Option(None, "--by", help="Who asks (default: the login name)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Put failed (or not-found, or pending) fetch slots back to pending, due now.

    With a supplier: every such slot of it, or only --system's; a verified slot is refused (use the
    API's refresh). Without one, after a fix at the hub (a key set, a mapping corrected):
    ``--system nts --failed`` re-queues every slot of that system the hub gave up on. The scheduler
    fetches them on its next run."""
    from hub.suppliers.commands import RetryCredentialFetches, RetryFailedFetchesOfSystem

    if supplier_id is None and not (failed and system):
        raise typer.BadParameter("give a supplier id, or --system SYSTEM --failed for every supplier")
    if supplier_id is not None and (failed or not_found):
        raise typer.BadParameter("--failed and --not-found re-queue a whole system: drop the supplier id")
    requested_by = f"cli:{by or _operator()}"
    settings = load_settings()
    if supplier_id is None and system not in settings.connectors:
        fail(f"no upstream system {system!r}; configured: {', '.join(sorted(settings.connectors))}")
    with open_hub(settings) as hub, service_errors():
        if supplier_id is None:
            assert system is not None
            command: RetryCredentialFetches | RetryFailedFetchesOfSystem = RetryFailedFetchesOfSystem(
                system=system, reason=reason, requested_by=requested_by, include_not_found=not_found)
        else:
            command = RetryCredentialFetches(supplier_id=supplier_id, system=system, reason=reason,
                                             requested_by=requested_by)
        slots = hub.bus.handle(command)
        rows = [{"fetch_id": s.id, "supplier_id": s.supplier_id, "system": s.system, "state": s.state,
                 "next_attempt_at": s.next_attempt_at.isoformat(timespec="seconds") if s.next_attempt_at else None}
                for s in slots]
    if as_json:
        echo_json(rows)
        return
    print_table(["fetch id", "supplier", "system", "state", "due"],
                [[r["fetch_id"], r["supplier_id"], r["system"], r["state"], r["next_attempt_at"]] for r in rows])
    if supplier_id is None:
        typer.echo(f"{len(rows)} {system} slot(s) back to pending")
