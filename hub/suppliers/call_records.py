"""A ``CallRecorder`` that keeps every upstream call in ``upstream_calls``: what the hub asked whom, on
whose behalf and why, with the hashes of what went out and came back (never the bodies: those that
became credentials are kept, by hash, with their versions).

Records are written by one background thread, in batches, outside the caller's unit of work: a call
happened whether or not the transaction that wanted its answer commits, and writing the record must
not add to the latency of the fetch that made it (on SQLite every writer queues for one lock). A
failure to record is logged, never raised into the fetch; ``flush()`` waits until all are written.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from connectors.resilience import CallRecord
from hub.suppliers.tables import upstream_calls

__all__ = ["DbCallRecorder"]

log = logging.getLogger(__name__)

_BATCH = 200


def _row(call: CallRecord) -> dict[str, Any]:
    return {
        "system": call.system,
        "purpose": call.purpose[:64],
        "requested_by": call.requested_by[:64],
        "identifier_count": len(call.identifiers),
        "batched": len(call.identifiers) > 1,
        "started_at": call.started_at,
        "duration_ms": call.duration_ms,
        "outcome": call.outcome,
        "attempts": call.attempts,
        "http_status": call.http_status,
        "error_code": call.error_code[:100] if call.error_code else None,
        "request_sha256": call.request_sha256,
        "response_sha256": call.response_sha256,
    }


class DbCallRecorder:
    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory
        self._queue: queue.Queue[CallRecord | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="upstream-call-recorder", daemon=True)
        self._thread.start()

    def record(self, call: CallRecord) -> None:
        self._queue.put(call)

    def flush(self) -> None:
        """Block until every call recorded so far is in the table."""
        self._queue.join()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            batch = [first]
            while len(batch) < _BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            calls = [c for c in batch if c is not None]
            try:
                if calls:
                    self._write(calls)
            finally:
                for _ in batch:
                    self._queue.task_done()
            if None in batch:
                return

    def _write(self, calls: list[CallRecord]) -> None:
        try:
            with self.session_factory() as session:
                session.execute(upstream_calls.insert(), [_row(c) for c in calls])
                session.commit()
        except Exception:
            log.exception("could not record %d upstream calls", len(calls))
