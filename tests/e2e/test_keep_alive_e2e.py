"""The local server keeps an idle keep-alive connection longer than clients do (httpx and browsers reuse one for
up to 5 s): with both at 5 s, a client could send on a connection the server was closing at that moment and get
"connection reset by peer" — one upload of 300 lost that way in benchmarks/load.py uploads (50 users)."""

from __future__ import annotations

import socket
import time

REQUEST = b"GET /.well-known/jwks.json HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n"


def read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    while len(body) < length:
        body += sock.recv(65536)
    return head


def test_a_connection_idle_for_longer_than_a_clients_keep_alive_is_still_served(stack):
    with socket.create_connection(("127.0.0.1", stack.port), timeout=30) as sock:
        sock.sendall(REQUEST % stack.port)
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        time.sleep(5.5)  # idle past httpx's keepalive_expiry (5 s) and uvicorn's default timeout (5 s)
        sock.sendall(REQUEST % stack.port)
        assert read_response(sock).startswith(b"HTTP/1.1 200")
