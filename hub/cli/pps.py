"""``g2bhub pps``: pull KONEPS bid notices from the PPS open API by hand (the worker does it on schedule).

``g2bhub pps pull --from 2026-03-01 --to 2026-03-07`` imports every notice version the configured
operations list in that range, window by window and page by page, through the same import as
``POST /notices/import/pps``: a rerun changes nothing (every order already imported is ``unchanged``).
Times are Korean time unless they carry an offset; a date alone in ``--to`` includes that whole day.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from typing import Any

import typer

from hub.cli._common import echo_json, fail, load_settings, open_hub, print_table

__all__ = ["app", "parse_bound"]

app = typer.Typer(help="Pull KONEPS bid notices from the PPS open API.", no_args_is_help=True)


def parse_bound(value: str, *, end: bool) -> datetime:
    """``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM`` (an offset optional; Korean time without one). A date alone
    as an end means the end of that day."""
    from hub.notices.pps_puller import KST

    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        fail(f"{value!r} is not YYYY-MM-DD or YYYY-MM-DDTHH:MM")
    if end and len(value) == 10:
        parsed += timedelta(days=1)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=KST)


@app.command("pull")
def pull(
    from_: str = typer.Option(..., "--from", help="Start, YYYY-MM-DD[THH:MM] (Korean time unless an offset)."),
    to: str = typer.Option(..., "--to", help="End, YYYY-MM-DD[THH:MM]; a date alone includes that day."),
    operation: list[str] = typer.Option(
        [], "--operation", "-o", help="Only this operation (repeatable); default: pps.operations."
    ),
    org_id: str | None = typer.Option(None, "--org", help="Import as this institution (default: pps.org_id)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Backfill a range: every page of every window, with a progress bar on stderr and a summary."""
    start, end = parse_bound(from_, end=False), parse_bound(to, end=True)
    if end <= start:
        fail("--to must be after --from")
    settings = load_settings()
    if org_id:
        settings = settings.model_copy(update={"pps": settings.pps.model_copy(update={"org_id": org_id})})
    unknown = [op for op in operation if not op.startswith("getBidPblancListInfo")]
    if unknown:
        fail(f"not a bid-notice list operation: {', '.join(unknown)}")
    from hub.bootstrap import pps_puller
    from hub.notices.pps_puller import PageOutcome, windows

    operations = list(operation) or list(settings.pps.operations)
    spans = len(list(windows(start, end, timedelta(hours=settings.pps.window_h))))
    with open_hub(settings) as hub:
        puller = pps_puller(settings, hub.bus, hub.session_factory)
        with typer.progressbar(length=spans * len(operations), label="pulling", file=sys.stderr, show_pos=True) as bar:

            def advance(page: PageOutcome) -> None:
                bar.label = f"{page.operation} {page.window_start:%Y-%m-%d %H:%M} page {page.page_no}/{page.last_page}"
                if page.page_no >= page.last_page or not page.items:
                    bar.update(1)
                else:
                    bar.update(0)

            run = puller.backfill(start, end, operations, on_page=advance)
    summary: dict[str, Any] = {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "operations": operations,
        **run.summary(),
    }
    if as_json:
        echo_json(summary)
    else:
        print_table(
            ["pages", "items", "versions created", "unchanged", "rejected"],
            [[run.pages, run.items, run.versions_created, run.counts["unchanged"], run.counts["rejected"]]],
        )
    if run.misconfigured:
        fail(f"misconfigured: {run.misconfigured}")
    if run.busy:
        fail(f"being pulled by a worker, try again shortly: {', '.join(run.busy)}")
    if run.failed:
        fail("stopped early: " + "; ".join(f"{op}: {why}" for op, why in run.failed.items()))
