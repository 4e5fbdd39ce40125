"""The event loop a dispatcher's webhook attempts run on: one thread, one ``httpx.AsyncClient``, at
most ``dispatch_concurrency`` attempts under way and the rest of the claimed ones queued for a slot.

The dispatcher's own thread claims and records (blocking database work); it hands each attempt over
with :meth:`WebhookLoop.submit` and learns of its end through the returned future. Stopping cancels the
attempts still queued (never sent: the dispatcher releases them) and waits for those under way, which
end by their deadline."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Awaitable, Callable

import httpx

from hub.subscriptions.sender import Attempt

__all__ = ["WebhookLoop"]

Send = Callable[[httpx.AsyncClient], Awaitable[Attempt]]


class WebhookLoop:
    """``make_client`` is called on the loop's thread (the client belongs to that loop)."""

    def __init__(self, make_client: Callable[[], httpx.AsyncClient], concurrency: int,
                 name: str = "webhooks") -> None:
        self._loop = asyncio.new_event_loop()
        self._queued: set[asyncio.Task[Attempt]] = set()
        self._ready = threading.Event()
        self._client: httpx.AsyncClient | None = None
        self._slots: asyncio.Semaphore | None = None
        self._closed = False

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._client = make_client()
            self._slots = asyncio.Semaphore(concurrency)
            self._ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name=name, daemon=True)
        self._thread.start()
        self._ready.wait()

    def submit(self, send: Send) -> concurrent.futures.Future[Attempt]:
        """Run ``send`` with the loop's client once a slot is free; the future ends with its attempt,
        or cancelled when the loop stopped before it was sent."""
        return asyncio.run_coroutine_threadsafe(self._attempt(send), self._loop)

    async def _attempt(self, send: Send) -> Attempt:
        assert self._slots is not None and self._client is not None
        task = asyncio.current_task()
        assert task is not None
        self._queued.add(task)
        try:
            await self._slots.acquire()
        finally:
            self._queued.discard(task)
        try:
            return await send(self._client)
        finally:
            self._slots.release()

    async def _cancel_queued(self) -> None:
        for task in list(self._queued):
            task.cancel()

    def close(self, pending: list[concurrent.futures.Future[Attempt]] | None = None,
              wait_s: float = 0.0) -> None:
        """Cancel the queued attempts, wait up to ``wait_s`` for ``pending`` (those under way end by
        their deadline), then close the client and stop the loop."""
        if self._closed:
            return
        self._closed = True
        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self._cancel_queued(), self._loop).result()
            if pending:
                concurrent.futures.wait(pending, timeout=wait_s)
            if self._client is not None:
                with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
                    asyncio.run_coroutine_threadsafe(self._client.aclose(), self._loop).result(timeout=5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()
