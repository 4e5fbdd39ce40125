"""A loopback TCP proxy a test can cut: the hub's processes reach PostgreSQL or RabbitMQ through it, so a
test can make the server unavailable to them without touching the server, which other processes share.

``cut()`` closes every live connection at once (as a crashed server or a dropped network would) and,
until ``restore()``, refuses new ones: each is accepted and closed straight away, so a client sees a
reset during its handshake rather than waiting for a timeout."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

__all__ = ["TcpProxy"]

_CHUNK = 65536


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.listener = socket.create_server((host, 0))
        self.listener.settimeout(0.2)
        self.host = host
        self.port = int(self.listener.getsockname()[1])
        self.lock = threading.Lock()
        self.pairs: set[tuple[socket.socket, socket.socket]] = set()
        self.is_cut = False
        self.refused = 0  # connections refused while cut
        self.accepted = 0
        self.closing = threading.Event()
        self.thread = threading.Thread(target=self._accept_loop, name=f"proxy-{self.port}", daemon=True)
        self.thread.start()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def live(self) -> int:
        with self.lock:
            return len(self.pairs)

    def cut(self) -> None:
        """Close every live connection and refuse new ones until :meth:`restore`."""
        with self.lock:
            self.is_cut = True
            pairs = list(self.pairs)
            self.pairs.clear()
        for pair in pairs:
            _close(pair)

    def restore(self) -> None:
        with self.lock:
            self.is_cut = False

    def close(self) -> None:
        self.closing.set()
        self.cut()
        self.thread.join(2)
        with contextlib.suppress(OSError):
            self.listener.close()

    def _accept_loop(self) -> None:
        while not self.closing.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self.lock:
                refuse = self.is_cut
            if refuse:
                self.refused += 1
                _abort(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _abort(client)
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            pair = (client, upstream)
            with self.lock:
                if self.is_cut:  # cut while we were connecting
                    _close(pair)
                    continue
                self.pairs.add(pair)
                self.accepted += 1
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink, pair), daemon=True,
                                 name=f"proxy-{self.port}-pump").start()

    def _pump(self, source: socket.socket, sink: socket.socket, pair: tuple[socket.socket, socket.socket]) -> None:
        try:
            while True:
                data = source.recv(_CHUNK)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        with self.lock:
            self.pairs.discard(pair)
        _close(pair)


def _abort(sock: socket.socket) -> None:
    """Close with a reset (SO_LINGER 0), as a refused or dropped connection looks to the client."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


def _close(pair: tuple[socket.socket, socket.socket]) -> None:
    for sock in pair:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        _abort(sock)
