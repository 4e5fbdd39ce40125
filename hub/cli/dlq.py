"""``g2bhub dlq``: look at messages a consumer group gave up on, fix the cause, then replay them.
Replay goes through the outbox addressed to the one group that failed, keeping the message id, so groups
that already applied the message are not bothered and a double replay changes nothing."""

from __future__ import annotations

import typer

from hub.cli._common import echo_json, fail, load_settings, open_hub, print_table, service_errors

app = typer.Typer(help="Dead letters: list and replay.", no_args_is_help=True)


def _one_line(text: str, width: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


@app.command("list")
def list_dead_letters(
    group: str | None = typer.Option(None, "--group", help="Only this consumer group."),
    include_replayed: bool = typer.Option(False, "--all", help="Include dead letters already replayed."),
    limit: int = typer.Option(100, "--limit", min=1, max=10_000),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (full reasons) instead of a table."),
) -> None:
    """List dead letters (open ones unless --all)."""
    settings = load_settings()
    with open_hub(settings) as hub, hub.uow() as uow:
        letters = uow.dead_letters.list(group=group, include_replayed=include_replayed, limit=limit)
    if as_json:
        echo_json(
            [
                {
                    "id": d.id,
                    "group": d.consumer_group,
                    "message_type": d.envelope.message_type,
                    "message_id": d.envelope.message_id,
                    "deliveries": d.delivery_count,
                    "dead_at": d.dead_at.isoformat(),
                    "replayed_at": d.replayed_at.isoformat() if d.replayed_at else None,
                    "reason": d.reason,
                }
                for d in letters
            ]
        )
        return
    if not letters:
        typer.echo("no dead letters" + ("" if include_replayed else " waiting for replay"))
        return
    headers = ["id", "group", "message type", "message id", "deliveries", "dead at", "reason"]
    if include_replayed:
        headers.insert(6, "replayed at")
    rows = []
    for d in letters:
        row: list[object] = [
            d.id,
            d.consumer_group,
            d.envelope.message_type,
            d.envelope.message_id,
            d.delivery_count,
            d.dead_at.isoformat(timespec="seconds"),
        ]
        if include_replayed:
            row.append(d.replayed_at.isoformat(timespec="seconds") if d.replayed_at else "-")
        row.append(_one_line(d.reason))
        rows.append(row)
    print_table(headers, rows)


@app.command()
def replay(
    ids: list[int] | None = typer.Argument(None, help="Dead letter ids to replay."),
    group: str | None = typer.Option(None, "--group", help="Only dead letters of this consumer group."),
    replay_all: bool = typer.Option(False, "--all", help="Replay every open dead letter (of --group)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON ({replayed: [...], not_replayed: [...]})."),
) -> None:
    """Send dead letters back to their consumer group. Name IDS, or pass --all (optionally with --group)."""
    from hub.spine.dead_letters import ReplayDeadLetters

    if ids and replay_all:
        fail("give dead letter ids or --all, not both")
    if not ids and not replay_all:
        fail("nothing chosen: give dead letter ids, or --all to replay every open one")
    settings = load_settings()
    with open_hub(settings) as hub, service_errors():
        replayed: list[int] = hub.bus.handle(ReplayDeadLetters(ids=ids or None, consumer_group=group))
    if as_json:
        echo_json({"replayed": replayed, "not_replayed": sorted(set(ids or []) - set(replayed))})
        return
    typer.echo(f"replayed {len(replayed)} dead letter(s)" + (f": {', '.join(map(str, replayed))}" if replayed else ""))
    if ids:
        missing = sorted(set(ids) - set(replayed))
        if missing:
            typer.secho(
                f"not replayed (unknown, already replayed or another group): {', '.join(map(str, missing))}",
                fg=typer.colors.YELLOW,
                err=True,
            )
