"""Pulling KONEPS bid notices from the PPS open API into the hub, by itself (docs/pps.md).

For every configured BidPublicInfoService operation, the puller walks time windows (``inqryDiv`` 3 by
change time, or 1 by registration time; ``pps.window_h`` long, never over the service's one-month
limit, ending ``pps.settle_minutes`` before now), pages through each window's ``totalCount`` and
imports every page with the very command ``POST /notices/import/pps`` sends (:class:`ImportNotices`,
as the organisation ``pps.org_id``), so a notice's orders become its versions and an order already
imported is ``unchanged``.

After each page the operation's checkpoint (:mod:`hub.notices.pps_checkpoints`) records the page; after
the last page, that the window is done. A restart resumes at the next page of the same window: no
window is skipped, and a page imported twice (a crash between its import and its checkpoint) changes
nothing. The checkpoint rows are leased, so two workers never pull the same operation.

A refused key (result codes 20/30/31/32, HTTP 401/403) or a missing organisation means the hub is
misconfigured: the run stops with one log line and nothing imported, and the next run tries again.
Quota answers (22) and transient faults are retried with backoff by the client; once its retries are
spent the operation stops where it is and the next run resumes there.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Protocol

from connectors.errors import UpstreamError
from connectors.pps_openapi import PpsKeyError, PpsPage
from hub.notices.commands import ImportNotices
from hub.notices.pps_checkpoints import Checkpoint, SqlPpsCheckpoints
from hub.notices.pps_config import PpsSettings
from hub.spine.observability import metrics

__all__ = ["KST", "PageOutcome", "PpsMisconfigured", "PpsPuller", "PullRun", "windows"]

log = logging.getLogger(__name__)

KST = timezone(timedelta(hours=9))  # PPS times are Korean; Korea keeps no daylight saving time
_MINUTE = timedelta(minutes=1)
VERSION_STATUSES = ("created", "amended", "cancelled")
MAX_REREADS = 3


class PpsMisconfigured(Exception):
    """The hub's PPS configuration is at fault (key refused, importing organisation missing)."""


class PageSource(Protocol):
    def list_page(
        self, operation: str, *, inquiry_div: int, begin: datetime, end: datetime, page_no: int, rows: int
    ) -> PpsPage: ...

    def close(self) -> None: ...


class CommandBus(Protocol):
    def handle(self, command: Any, correlation_id: str | None = None) -> Any: ...


class OrganisationLookup(Protocol):
    def __call__(self, org_id: str) -> str | None:
        """The organisation's kind, None when it does not exist."""
        ...


@dataclass(frozen=True)
class PageOutcome:
    operation: str
    window_start: datetime
    window_end: datetime
    page_no: int
    last_page: int
    total_count: int
    items: int
    counts: dict[str, int]


@dataclass
class PullRun:
    pages: int = 0
    items: int = 0
    windows: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    busy: list[str] = field(default_factory=list)  # operations another puller holds
    failed: dict[str, str] = field(default_factory=dict)  # operation → why it stopped early
    misconfigured: str | None = None

    @property
    def versions_created(self) -> int:
        return sum(self.counts[status] for status in VERSION_STATUSES)

    def summary(self) -> dict[str, Any]:
        return {
            "pages": self.pages,
            "items": self.items,
            "windows": self.windows,
            "versions_created": self.versions_created,
            "unchanged": self.counts["unchanged"],
            "rejected": self.counts["rejected"],
            "counts": dict(sorted(self.counts.items())),
            "busy": self.busy,
            "failed": self.failed,
            "misconfigured": self.misconfigured,
        }


def floor_minute(when: datetime) -> datetime:
    return when.replace(second=0, microsecond=0)


def windows(start: datetime, end: datetime, size: timedelta) -> Iterator[tuple[datetime, datetime]]:
    """``[start, end)`` cut into consecutive half-open windows of at most ``size``, on whole minutes."""
    size = max(size, _MINUTE)
    while start < end:
        stop = min(floor_minute(start + size), end)
        if stop <= start:
            stop = min(start + _MINUTE, end)
        yield start, stop
        start = stop


def _kst(when: datetime) -> datetime:
    return when.astimezone(KST).replace(tzinfo=None)


class PpsPuller:
    def __init__(
        self,
        settings: PpsSettings,
        bus: CommandBus,
        checkpoints: SqlPpsCheckpoints,
        source_factory: Callable[[], PageSource],
        org_kind: OrganisationLookup,
        max_items: int,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.checkpoints = checkpoints
        self.source_factory = source_factory
        self.org_kind = org_kind
        self.rows = min(settings.page_size, max_items)  # one page is one import: within its item cap
        self.misconfigured: str | None = None  # why the last run could not pull, while that lasts
        self.misconfigured_since: datetime | None = None
        self._lock = threading.Lock()

    # -- the scheduled job ----------------------------------------------------------------------------------
    def run_once(
        self,
        now: datetime | None = None,
        stop: threading.Event | None = None,
        on_page: Callable[[PageOutcome], None] | None = None,
    ) -> PullRun:
        """Pull every configured operation from its checkpoint up to ``now`` minus the settle time."""
        now = now or datetime.now(UTC)
        horizon = floor_minute(now - timedelta(minutes=self.settings.settle_minutes))
        window = timedelta(hours=self.settings.window_h)
        first_start = self.settings.start or horizon - window
        if first_start.tzinfo is None:
            first_start = first_start.replace(tzinfo=KST)
        run = PullRun()
        owner = uuid.uuid4().hex
        claimed = self.checkpoints.claim(list(self.settings.operations), owner, floor_minute(first_start))
        run.busy = sorted(set(self.settings.operations) - {c.operation for c in claimed})
        if not claimed:
            return run
        try:
            self._check_org()
            with self._source() as source:
                for checkpoint in claimed:
                    if stop is not None and stop.is_set():
                        break
                    self._pull_operation(source, checkpoint, owner, horizon, window, run, stop, on_page)
        except PpsMisconfigured as error:
            self._misconfigured(str(error), run)
        finally:
            for checkpoint in claimed:
                self.checkpoints.release(checkpoint.operation, owner)
        if run.misconfigured is None:
            self._recovered()
        if run.pages:
            log.info(
                "pps pull: %d pages, %d items, %d new versions",
                run.pages,
                run.items,
                run.versions_created,
                extra={"pps": run.summary()},
            )
        return run

    def __call__(self) -> None:
        self.run_once()

    def status(self) -> dict[str, object] | None:
        """What ``/readyz`` shows while the hub's PPS configuration is at fault (None otherwise)."""
        with self._lock:
            if self.misconfigured is None or self.misconfigured_since is None:
                return None
            return {"since": self.misconfigured_since.isoformat(timespec="seconds"), "detail": self.misconfigured}

    def _pull_operation(
        self,
        source: PageSource,
        checkpoint: Checkpoint,
        owner: str,
        horizon: datetime,
        window: timedelta,
        run: PullRun,
        stop: threading.Event | None,
        on_page: Callable[[PageOutcome], None] | None,
    ) -> None:
        operation = checkpoint.operation
        start = checkpoint.window_start
        resume_end, first_page = checkpoint.window_end, self._resume_page(checkpoint)
        try:
            while True:
                if resume_end is not None:
                    end = resume_end
                else:
                    end = min(floor_minute(start + window), horizon)
                    first_page = 1
                if end <= start or (stop is not None and stop.is_set()):
                    return

                def record(page: PageOutcome, end: datetime = end) -> bool:
                    if on_page is not None:
                        on_page(page)
                    return self.checkpoints.page_done(operation, owner, end, page.page_no, self.rows, page.total_count)

                known_total = checkpoint.total_count if first_page > 1 and resume_end == end else None
                if not self._pull_window(source, operation, start, end, first_page, run, record, stop, known_total):
                    return
                if not self.checkpoints.window_done(operation, owner, end):
                    return  # the lease ran out and someone else holds the row: leave it to them
                run.windows += 1
                start, resume_end = end, None
        except PpsKeyError as error:
            raise PpsMisconfigured(f"the PPS service refused the key ({error.code}: {error.detail})") from error
        except UpstreamError as error:
            run.failed[operation] = str(error)
            self.checkpoints.failed(operation, owner, str(error))
            log.warning(
                "pps pull of %s stopped: %s; the next run resumes there",
                operation,
                error,
                extra={"operation": operation, "code": error.code},
            )

    def _resume_page(self, checkpoint: Checkpoint) -> int:
        """The page after the last one imported, counted in this run's page size: a page size changed
        meanwhile restarts at the page holding the first item not yet imported (re-importing a few
        items changes nothing; skipping some would lose them)."""
        size = checkpoint.page_size or self.rows
        return checkpoint.pages_done * size // self.rows + 1

    # -- a backfill of a range (the CLI) --------------------------------------------------------------------
    def backfill(
        self,
        start: datetime,
        end: datetime,
        operations: list[str] | None = None,
        on_page: Callable[[PageOutcome], None] | None = None,
    ) -> PullRun:
        """Pull ``[start, end)`` for ``operations`` (default: the configured ones), holding their leases
        so no worker pulls them meanwhile; the scheduled checkpoints are left as they are."""
        run = PullRun()
        wanted = list(operations or self.settings.operations)
        owner = uuid.uuid4().hex
        claimed = self.checkpoints.claim(wanted, owner, floor_minute(start))
        run.busy = sorted(set(wanted) - {c.operation for c in claimed})
        window = timedelta(hours=self.settings.window_h)
        try:
            self._check_org()
            with self._source() as source:
                for checkpoint in claimed:
                    operation = checkpoint.operation

                    def record(page: PageOutcome) -> bool:
                        if on_page is not None:
                            on_page(page)
                        self.checkpoints.renew(page.operation, owner)
                        return True

                    try:
                        for begin, stop in windows(floor_minute(start), floor_minute(end), window):
                            self._pull_window(source, operation, begin, stop, 1, run, record, None)
                            run.windows += 1
                    except PpsKeyError as error:
                        raise PpsMisconfigured(
                            f"the PPS service refused the key ({error.code}: {error.detail})"
                        ) from error
                    except UpstreamError as error:
                        run.failed[operation] = str(error)
        except PpsMisconfigured as error:
            self._misconfigured(str(error), run)
        finally:
            for checkpoint in claimed:
                self.checkpoints.release(checkpoint.operation, owner)
        return run

    # -- shared ---------------------------------------------------------------------------------------------
    def _pull_window(
        self,
        source: PageSource,
        operation: str,
        start: datetime,
        end: datetime,
        first_page: int,
        run: PullRun,
        record: Callable[[PageOutcome], bool],
        stop: threading.Event | None,
        expected_total: int | None = None,
    ) -> bool:
        """Import pages ``first_page``… of ``[start, end)``; False when the run must leave the operation.

        A ``totalCount`` that changes between pages means the listing moved under the paging (a record's
        change time left the window, a late registration entered it): the pages already read may now hold
        other items, and one may have slid onto a page already read. The window is then read again from
        page 1 (at most :data:`MAX_REREADS` times; importing an item twice changes nothing)."""
        page_no, rereads = first_page, 0
        while True:
            page = source.list_page(
                operation,
                inquiry_div=self.settings.inquiry_div,
                begin=_kst(start),
                end=_kst(end - _MINUTE),
                page_no=page_no,
                rows=self.rows,
            )
            if expected_total is not None and page.total_count != expected_total and rereads < MAX_REREADS:
                rereads += 1
                log.info(
                    "pps pull: the %s window from %s changed while paging (%d -> %d items); reading it again",
                    operation,
                    start.isoformat(),
                    expected_total,
                    page.total_count,
                    extra={"operation": operation},
                )
                if page_no != 1:
                    expected_total, page_no = None, 1
                    continue
            expected_total = page.total_count
            counts = self._import(operation, page) if page.items else {}
            run.pages += 1
            run.items += len(page.items)
            run.counts.update(counts)
            outcome = PageOutcome(
                operation, start, end, page_no, page.last_page, page.total_count, len(page.items), counts
            )
            if not record(outcome):
                return False
            if not page.items or page_no >= page.last_page:
                return True
            if stop is not None and stop.is_set():
                return False
            page_no += 1

    def _import(self, operation: str, page: PpsPage) -> dict[str, int]:
        org_id = self.settings.org_id or ""
        receipt = self.bus.handle(
            ImportNotices(
                institution_org_id=org_id,
                format="pps",
                document=page.document,
                options={"operation": operation},
                actor_org_id=org_id,
            )
        )
        counts = receipt.body.get("counts", {}) if isinstance(receipt.body, dict) else {}
        rejected = [entry for entry in receipt.body.get("items", []) if entry.get("status") == "rejected"]
        if rejected:
            log.warning(
                "pps pull: %d items of %s page %d rejected",
                len(rejected),
                operation,
                page.page_no,
                extra={"operation": operation, "rejected": rejected[:5]},
            )
        return {str(k): int(v) for k, v in counts.items()}

    def _check_org(self) -> None:
        org_id = self.settings.org_id
        if not org_id:
            raise PpsMisconfigured("pps.org_id is not set: no organisation to import the notices as")
        kind = self.org_kind(org_id)
        if kind is None:
            raise PpsMisconfigured(f"pps.org_id {org_id} names no organisation")
        if kind != "institution":
            raise PpsMisconfigured(f"pps.org_id {org_id} is an {kind}, not an institution")

    def _source(self) -> _Closing:
        try:
            return _Closing(self.source_factory())
        except PpsKeyError as error:
            raise PpsMisconfigured(f"{error.code}: {error.detail}") from error

    def _misconfigured(self, reason: str, run: PullRun) -> None:
        run.misconfigured = reason
        metrics.UPSTREAM_MISCONFIGURED.labels("pps").set(1)
        with self._lock:
            first = self.misconfigured != reason
            if first:
                self.misconfigured_since = datetime.now(UTC)
            self.misconfigured = reason
        if first:  # one line per new fault, not one per interval
            log.error("pps pull: the hub is misconfigured, nothing pulled: %s", reason, extra={"system": "pps"})

    def _recovered(self) -> None:
        metrics.UPSTREAM_MISCONFIGURED.labels("pps").set(0)
        with self._lock:
            was, self.misconfigured, self.misconfigured_since = self.misconfigured, None, None
        if was is not None:
            log.info("pps pull: configuration works again", extra={"system": "pps"})


class _Closing:
    def __init__(self, source: PageSource) -> None:
        self.source = source

    def __enter__(self) -> PageSource:
        return self.source

    def __exit__(self, *_: object) -> None:
        self.source.close()
