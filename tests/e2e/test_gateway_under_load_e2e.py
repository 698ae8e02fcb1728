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


# ---- interactive requests beside busy ones: orderings and threads, never timings ------------------------------------

PASSWORD = "a long enough password"


def client_of(stack, name: str):
    from photo_organizer.local_stack.client import PhotoApiClient

    user, _ = stack.identity.add_user(name, PASSWORD)
    return PhotoApiClient(stack.url, stack.identity.issue_token(user))


def recording_thread_of(monkeypatch, service, method: str) -> list[str]:
    """The names of the threads `service.method` runs on, from now on."""
    import threading

    threads: list[str] = []
    original = getattr(service, method)

    def recording(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return original(*args, **kwargs)

    monkeypatch.setattr(service, method, recording)
    return threads


def blocked_until(event, entered, original):
    def blocked(*args, **kwargs):
        entered.set()
        assert event.wait(60), "the test never released the blocked call"
        return original(*args, **kwargs)

    return blocked


def test_a_presign_is_answered_on_the_event_loop_when_no_other_api_request_runs(stack, monkeypatch):
    """No thread hop for the quick interactive request: each one waited for a thread, then the loop, to be scheduled."""
    threads = recording_thread_of(monkeypatch, stack.services.uploads, "start")
    with client_of(stack, "quick") as client:
        tickets = [client.start_upload(f"p{n}.jpg", "image/jpeg", 1000) for n in range(3)]
    assert len({t["photo_id"] for t in tickets}) == 3
    assert threads == ["local-gateway"] * 3


def test_a_presign_waits_on_a_thread_while_another_api_request_runs_and_the_loop_serves_on(stack, monkeypatch):
    """The API resolves one request at a time (Powertools keeps the current request on the class): a presign that
    finds another one running waits for it on a thread, never on the event loop, which keeps answering meanwhile."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    release, entered = threading.Event(), threading.Event()
    monkeypatch.setattr(stack.services.photos, "get", blocked_until(release, entered, stack.services.photos.get))
    threads = recording_thread_of(monkeypatch, stack.services.uploads, "start")
    with client_of(stack, "busy") as client, client_of(stack, "waiting") as other, ThreadPoolExecutor(2) as pool:
        photo_id = client.start_upload("a.jpg", "image/jpeg", 1000)["photo_id"]
        busy = pool.submit(client.photo, photo_id)
        assert entered.wait(60)
        presign = pool.submit(other.start_upload, "b.jpg", "image/jpeg", 1000)
        jwks = httpx.get(f"{stack.url}/.well-known/jwks.json", timeout=30)  # the loop answers while both wait
        assert jwks.status_code == 200 and not busy.done() and not presign.done()
        release.set()
        assert busy.result(60)["photo_id"] == photo_id
        assert presign.result(60)["photo_id"]
    assert threads[0] == "local-gateway" and len(threads) == 2 and threads[1] != "local-gateway"


def test_a_presign_is_answered_while_every_upload_writer_is_busy(stack, monkeypatch):
    """Uploads storing their bytes take at most UPLOAD_WRITERS threads; more wait on the loop holding none. A
    presign passes them all: a person starting an upload is not queued behind other people's bytes."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from photo_organizer.local_stack.gateway import UPLOAD_WRITERS

    release, entered = threading.Event(), threading.Event()
    storing = []
    verify = stack.verify_upload

    class BlockedVerify:
        def __call__(self, *args, **kwargs):
            storing.append(threading.current_thread().name)
            entered.set()
            assert release.wait(60), "the test never released the uploads"
            return verify(*args, **kwargs)

        def __getattr__(self, name):
            return getattr(verify, name)

    monkeypatch.setattr(stack, "verify_upload", BlockedVerify())
    count = UPLOAD_WRITERS + 2
    with client_of(stack, "uploader") as client, client_of(stack, "starter") as starter, ThreadPoolExecutor(count) as pool:
        data = b"\xff\xd8 not really a jpeg"
        tickets = [client.start_upload(f"u{n}.jpg", "image/jpeg", len(data)) for n in range(count)]
        uploads = [pool.submit(client.send_file, ticket, data, "u.jpg", "image/jpeg") for ticket in tickets]
        assert entered.wait(60)
        ticket = starter.start_upload("next.jpg", "image/jpeg", 1000)
        assert ticket["photo_id"] and not any(upload.done() for upload in uploads)
        assert len(storing) <= UPLOAD_WRITERS
        release.set()
        for upload in uploads:
            upload.result(60)
        statuses = [client.wait_until_processed(t["photo_id"])["status"] for t in tickets]
    assert len(storing) == count and statuses == ["REJECTED"] * count
