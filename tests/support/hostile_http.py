"""A loopback HTTP/1.1 server that answers the way a hostile peer does: huge bodies generated lazily,
replies dribbled a byte at a time, gzip bombs. Each reply is a script that writes raw bytes to the
socket, so nothing in the server buffers what it sends; the server counts the body bytes it sent."""

from __future__ import annotations

import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from types import TracebackType

Script = Callable[["HostileServer", socket.socket], None]


def _read_request(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return
        rest += chunk


class HostileServer:
    """``with HostileServer(script) as server: ... server.url``; ``sent`` counts body bytes written
    (including what sat in kernel buffers when the client hung up)."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.sent = 0
        self.requests = 0
        self._lock = threading.Lock()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def count(self, n: int) -> None:
        with self._lock:
            self.sent += n

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()

    def stopped(self) -> bool:
        return self._stop.is_set()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            try:
                _read_request(conn)
                with self._lock:
                    self.requests += 1
                self.script(self, conn)
            except OSError:  # the client hung up: what it wanted to show
                pass


def huge_body(status: int, total: int, *, chunk: int = 64 * 1024) -> Script:
    """``status`` with a ``total``-byte body, produced as it is sent."""

    def script(server: HostileServer, conn: socket.socket) -> None:
        conn.sendall(f"HTTP/1.1 {status} Oops\r\ncontent-type: text/plain\r\ncontent-length: {total}\r\n\r\n".encode())
        block = (b"boom\x00\x1b[31m" * (chunk // 11 + 1))[:chunk]
        left = total
        while left > 0 and not server.stopped():
            piece = block[: min(chunk, left)]
            conn.sendall(piece)
            server.count(len(piece))
            left -= len(piece)

    return script


def dribble(status: int, every_s: float, *, headers_too: bool = False) -> Script:
    """One byte every ``every_s`` seconds for as long as the client listens: of the body after
    complete headers, or (``headers_too``) of headers that never end."""

    def script(server: HostileServer, conn: socket.socket) -> None:
        head = f"HTTP/1.1 {status} Slow\r\ncontent-type: text/plain\r\n"
        if headers_too:
            head += "x-pad: "
            for byte in head.encode():
                conn.sendall(bytes([byte]))
                time.sleep(every_s)
            byte_ = b"p"
        else:
            conn.sendall((head + "content-length: 100000\r\n\r\n").encode())
            byte_ = b"z"
        while not server.stopped():
            conn.sendall(byte_)
            server.count(1)
            time.sleep(every_s)

    return script


def gzip_stream(total: int, *, block: int = 1024 * 1024) -> Iterator[bytes]:
    """``total`` zero bytes, gzip-compressed as they are produced (about 1/1000 of the size on the wire)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(block)
    left = total
    while left > 0:
        piece = compressor.compress(zeros[: min(block, left)])
        left -= min(block, left)
        if piece:
            yield piece
    yield compressor.flush()


def gzip_bomb(status: int, inflated: int, content_type: str = "application/json") -> Script:
    """A small gzip body that inflates to ``inflated`` bytes, compressed on the fly."""

    def script(server: HostileServer, conn: socket.socket) -> None:
        body = b"".join(gzip_stream(inflated))
        conn.sendall((f"HTTP/1.1 {status} OK\r\ncontent-type: {content_type}\r\ncontent-encoding: gzip\r\n"
                      f"content-length: {len(body)}\r\n\r\n").encode())
        conn.sendall(body)
        server.count(len(body))

    return script
