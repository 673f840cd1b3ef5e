"""A unix-socket proxy in front of a real dockerd that adds latency per request.

It makes a real scan slow enough to kill a worker in the middle of it, deterministically,
without touching posture's code. ``cut()`` drops every connection and stops listening: the
daemon "dies" mid-scan from the client's point of view."""

from __future__ import annotations

import os
import socket
import threading
import time


class SlowProxy:
    def __init__(self, upstream_path: str, path: str, delay: float = 0.3):
        self.upstream_path = upstream_path
        self.path = path
        self.delay = delay
        self.requests = 0
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        if os.path.exists(path):
            os.unlink(path)
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(path)
        self._server.listen(64)
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.connect(self.upstream_path)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, is_request: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if is_request:
                    with self._lock:
                        self.requests += 1
                    time.sleep(self.delay)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        """Stop listening and drop every open connection."""
        self._closed.set()
        self._server.close()
        with self._lock:
            for s in self._conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass
        if os.path.exists(self.path):
            os.unlink(self.path)

    close = cut
