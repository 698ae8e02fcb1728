"""The local server under load: it keeps an idle keep-alive connection longer than clients do (httpx and browsers reuse one for
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


def test_an_upload_puts_its_event_on_the_queue_off_the_event_loop(stack):
    """The queue is SQLite: a send waiting for its write lock on the event loop's thread stalled every request."""
    import threading

    from photo_organizer.local_stack.client import PhotoApiClient

    threads: list[str] = []
    send = stack.queue.send

    def recording(body):
        threads.append(threading.current_thread().name)
        return send(body)

    stack.queue.send = recording
    try:
        user, _ = stack.identity.add_user("loop-check", "a long enough password")
        with PhotoApiClient(stack.url, stack.identity.issue_token(user)) as client:
            client.wait_until_processed(client.upload_bytes(b"\xff\xd8 not really a jpeg", "x.jpg", "image/jpeg"))
    finally:
        stack.queue.send = send
    assert len(threads) == 1 and threads[0] != "local-gateway"
