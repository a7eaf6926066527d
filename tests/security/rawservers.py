"""Plain-socket HTTP servers on loopback for what a WSGI server cannot do: record every
request's raw bytes (a capture server standing in for an attacker's host), or answer a byte at a
time, status line and headers included, or never answer at all.

Each connection gets its own thread; ``stop()`` wakes and closes them all.
"""

from __future__ import annotations

import socket
import threading
from contextlib import suppress

#: What the trickling modes send, one byte every ``interval`` seconds.
_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Slow: "
_BODY_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
_OK = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
    b"Connection: close\r\n\r\n{}"
)
MODES = ("capture", "trickle-head", "silent", "trickle-body")


class RawServer:
    """``mode``: ``capture`` (record, answer ``{}``), ``trickle-head`` (the status line and
    headers one byte at a time, never ending), ``silent`` (accept, read, never answer) or
    ``trickle-body`` (headers at once, then a 100 kB body one byte at a time)."""

    def __init__(self, mode: str = "capture", interval: float = 0.05) -> None:
        if mode not in MODES:  # pragma: no cover
            raise ValueError(mode)
        self.mode = mode
        self.interval = interval
        self.requests: list[bytes] = []
        self.stopped = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.hostport = f"127.0.0.1:{self.port}"
        self.root = f"http://{self.hostport}"
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _read_request(self, conn: socket.socket) -> bytes:
        data = b""
        conn.settimeout(5)
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length" and value.strip().isdigit():
                while len(body) < int(value):
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    body += chunk
        return data if not body else head + b"\r\n\r\n" + body

    def _trickle(self, conn: socket.socket, data: bytes, forever: bytes) -> None:
        for byte in data:
            if self.stopped.wait(self.interval):
                return
            conn.sendall(bytes([byte]))
        while not self.stopped.wait(self.interval):
            conn.sendall(forever)

    def _serve(self, conn: socket.socket) -> None:
        with suppress(OSError), conn:
            request = self._read_request(conn)
            with self._lock:
                self.requests.append(request)
            if self.mode == "capture":
                conn.sendall(_OK)
            elif self.mode == "trickle-head":
                self._trickle(conn, _HEAD, b"a")
            elif self.mode == "trickle-body":
                conn.sendall(_BODY_HEAD)
                self._trickle(conn, b"", b" ")
            else:
                self.stopped.wait(30)

    def stop(self) -> None:
        self.stopped.set()
        self._listener.close()
        with self._lock:
            for conn in self._conns:
                with suppress(OSError):
                    conn.close()
