"""The security review's findings against the local gateway, over real sockets (issue 13).

Bodies: a client streams a large body; the test notes how many bytes it had sent when the answer arrived. A server
that reads the whole body first answers only after the last byte; one that authenticates first and streams with a
running limit answers while most of the body is still unsent (sent < half of it, whatever the socket buffers hold).
"""

from __future__ import annotations

import functools
import re
import select
import socket
import threading

import httpx
import pytest

from photo_organizer.errors import ConfigurationError, ConflictError, PermanentError, UnauthorizedError
from photo_organizer.local_stack.client import PhotoApiClient

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]
TIMEOUT = 60.0  # shared, loaded machines: httpx's 5 s default has timed out on a plain GET
_get = functools.partial(httpx.get, timeout=TIMEOUT)
_post = functools.partial(httpx.post, timeout=TIMEOUT)
TOTAL = 64 * 1024 * 1024
CHUNK = 64 * 1024


@pytest.fixture(scope="module")
def dora(stack):
    user, _ = stack.identity.add_user("dora", "dora's long password")
    token = stack.identity.issue_token(user)
    with PhotoApiClient(stack.url, token) as client:
        yield user, token, client


def _stream_until_answered(port: int, head: bytes, *, chunked: bool) -> tuple[int, int]:
    """Sends `head`, then up to TOTAL body bytes; returns (status, body bytes sent when the answer came)."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(5)
    sent = 0
    try:
        sock.sendall(head)
        piece = b"x" * CHUNK
        framed = b"%x\r\n" % CHUNK + piece + b"\r\n" if chunked else piece
        while sent < TOTAL:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(framed)
            except (TimeoutError, BrokenPipeError, ConnectionResetError):
                break  # the server stopped reading: it has answered or given up on the body
            sent += CHUNK
        if chunked and sent >= TOTAL:
            sock.sendall(b"0\r\n\r\n")
        sock.settimeout(30)
        answer = sock.recv(4096)
    finally:
        sock.close()
    return int(answer.split(b" ", 2)[1]), sent


def _head(stack, method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{stack.port}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_unauthenticated_api_body_is_refused_before_it_is_read(stack):
    head = _head(stack, "POST", "/uploads", {"Content-Type": "application/json", "Content-Length": str(TOTAL)})
    status, sent = _stream_until_answered(stack.port, head, chunked=False)
    assert status == 401
    assert sent < TOTAL // 2, f"the 401 came after {sent} of {TOTAL} bytes: the body was read before authenticating"


def test_authenticated_chunked_api_body_stops_at_the_running_limit(stack, dora):
    _, token, _ = dora
    head = _head(
        stack, "POST", "/uploads",
        {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
    )
    status, sent = _stream_until_answered(stack.port, head, chunked=True)
    assert status == 413
    assert sent < TOTAL // 2, f"the 413 came after {sent} of {TOTAL} bytes: the body was read whole"


def test_sign_in_body_is_limited_while_streaming(stack):
    head = _head(stack, "POST", "/auth/token", {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    status, sent = _stream_until_answered(stack.port, head, chunked=True)
    assert status == 413
    assert sent < TOTAL // 2, f"the 413 came after {sent} of {TOTAL} bytes"


def test_chunked_upload_without_a_length_is_refused_before_it_is_read(stack):
    head = _head(
        stack, "POST", "/_blobs/originals",
        {"Content-Type": "multipart/form-data; boundary=xyz", "Transfer-Encoding": "chunked"},
    )
    status, sent = _stream_until_answered(stack.port, head, chunked=True)
    assert status == 411
    assert sent < TOTAL // 2, f"the 411 came after {sent} of {TOTAL} bytes"


@pytest.mark.parametrize("query", ["from=2023-01-01", "to=2023-01-01", "from=2023-01-01T00:00:00Z"])
def test_search_with_only_one_date_bound_answers_200(stack, dora, query):
    _, token, _ = dora
    response = _get(f"{stack.url}/search?{query}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert response.json()["items"] == []


def test_an_upload_url_stays_used_after_its_photo_was_rejected(stack, dora):
    user, _, client = dora
    ticket = client.start_upload("notes.jpg", "image/jpeg", 20)
    files = {"file": ("notes.jpg", b"this is not a photo.", "image/jpeg")}
    assert _post(ticket["url"], data=ticket["fields"], files=files).status_code == 204
    assert client.wait_until_processed(ticket["photo_id"])["status"] == "REJECTED"
    assert not stack.services.originals.exists(f"originals/{user.sub}/{ticket['photo_id']}")

    again = _post(ticket["url"], data=ticket["fields"], files=files)
    assert again.status_code == 403 and b"already_used" in again.content
    assert not stack.services.originals.exists(f"originals/{user.sub}/{ticket['photo_id']}")


def test_concurrent_posts_to_one_upload_url_accept_exactly_one(stack, dora):
    _, _, client = dora
    data = b"\xff\xd8\xff" + b"\0" * 2000
    ticket = client.start_upload("same.jpg", "image/jpeg", len(data))
    gate = threading.Barrier(8)
    statuses: list[int] = []

    def post() -> None:
        gate.wait()
        sent = _post(ticket["url"], data=ticket["fields"], files={"file": ("same.jpg", data, "image/jpeg")})
        statuses.append(sent.status_code)

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [204] + [403] * 7


def _security_headers_present(response: httpx.Response) -> None:
    csp = response.headers["content-security-policy"]
    for directive in ("default-src 'self'", "script-src 'self'", "img-src 'self' data: blob:", "connect-src 'self'",
                      "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'"):
        assert directive in csp
    assert "unsafe-inline" not in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


def test_every_kind_of_response_carries_the_security_headers(stack, dora):
    user, token, client = dora
    photo_id = client.upload_bytes(_tiny_png(), "dot.png", "image/png")
    photo = client.wait_until_processed(photo_id)
    responses = [
        _get(f"{stack.url}/"),
        _get(f"{stack.url}/signin"),  # an app page (SPA routing)
        _get(f"{stack.url}/openapi.json"),
        _get(f"{stack.url}/photos"),  # 401
        _get(f"{stack.url}/photos", headers={"Authorization": f"Bearer {token}"}),
        _get(photo["urls"]["thumbnail"]),  # a signed blob
        _get(f"{stack.url}/_blobs/originals/nothing"),  # a blob error
        _post(f"{stack.url}/auth/token", json={"username": "nobody", "password": "x" * 8}),
    ]
    assert [r.status_code for r in responses] == [200, 200, 200, 401, 200, 200, 403, 401]
    for response in responses:
        _security_headers_present(response)


def test_the_app_has_no_inline_script_and_never_reads_a_token_from_the_url(stack):
    page = _get(f"{stack.url}/").text
    assert "<style>" not in page and "style=" not in page
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page) == []  # every script is a file the CSP allows
    for src in re.findall(r'<script[^>]*\bsrc="([^"]+)"', page):
        script = _get(f"{stack.url}{src}")
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]
        # The fragment is read for one thing only: a sign-in link's one-time code, which signs in after the person
        # confirms the account it names (tested in the browser) — never a token.
        fragment_reads = re.findall(r"location\.hash\.slice\(1\)\)\.get\(.(\w+).\)", script.text)
        assert fragment_reads in ([], ["code"])
        assert script.text.count("location.hash") <= 2 * len(fragment_reads)


@pytest.mark.parametrize("host", ["evil.example:80", "evil.example", "127.0.0.1:1", "", "localhost"])
def test_a_foreign_host_header_is_refused(stack, host):
    with socket.create_connection(("127.0.0.1", stack.port)) as sock:
        sock.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        answer = b"".join(iter(lambda: sock.recv(65536), b""))
    assert answer.split(b" ", 2)[1] == b"421"
    assert b"Photo Organizer" not in answer


@pytest.mark.parametrize("host_of", [lambda s: f"127.0.0.1:{s.port}", lambda s: f"localhost:{s.port}"])
def test_the_served_loopback_hosts_are_answered(stack, host_of):
    response = _get(f"{stack.url}/", headers={"Host": host_of(stack)})
    assert response.status_code == 200


def test_failed_sign_ins_are_throttled_with_retry_after(stack):
    stack.identity.add_user("erin", "erin's long password")
    answers = [
        _post(f"{stack.url}/auth/token", json={"username": "erin", "password": f"guess {n}"}) for n in range(6)
    ]
    assert [a.status_code for a in answers] == [401] * 5 + [429]
    assert int(answers[-1].headers["retry-after"]) > 0
    # Even the right password waits until the lock ends.
    right = _post(f"{stack.url}/auth/token", json={"username": "erin", "password": "erin's long password"})
    assert right.status_code == 429


def test_upload_refusals_carry_no_internal_details(stack, dora):
    user, token, client = dora
    ticket = client.start_upload("x.jpg", "image/jpeg", 10)
    fields = dict(ticket["fields"], key=f"originals/{user.sub}/someone-elses")
    refused = _post(ticket["url"], data=fields, files={"file": ("x.jpg", b"0123456789", "image/jpeg")})
    assert refused.status_code == 403
    _no_internal_details(refused.text, user.sub)


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (ConflictError, 400, "bad_request"),
        (ConfigurationError, 500, "misconfigured"),  # the deployment's fault, not the request's
        (PermanentError, 400, "bad_request"),
        (UnauthorizedError, 401, "unauthorized"),
    ],
)
def test_api_errors_answer_a_stable_code_and_log_the_detail(stack, dora, monkeypatch, error, status, code):
    user, token, _ = dora
    detail = f"put on photo-table-prod failed for originals/{user.sub}/p1 in bucket my-originals-bucket"

    def fail(*args, **kwargs):
        raise error(detail)

    monkeypatch.setattr(stack.services.search, "search", fail)
    answer = _get(f"{stack.url}/search?q=beach", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == status and answer.json()["code"] == code
    _no_internal_details(answer.text, user.sub)
    assert "photo-table-prod" not in answer.text and "my-originals-bucket" not in answer.text


def _no_internal_details(text: str, owner: str) -> None:
    assert owner not in text and "originals/" not in text and "Traceback" not in text


def _tiny_png() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()



def test_a_sign_in_link_is_named_without_being_used_and_then_signs_in_exactly_once(stack):
    user, _ = stack.identity.add_user("fern", "fern's long password")
    code = stack.identity.issue_sign_in_code(user)
    named = [_post(f"{stack.url}/auth/sign-in-link", json={"code": code}) for _ in range(2)]
    assert [n.json() for n in named] == [{"username": "fern"}] * 2
    first = _post(f"{stack.url}/auth/token", json={"code": code})
    assert first.status_code == 200 and stack.identity.verify(first.json()["id_token"])["sub"] == user.sub
    assert _post(f"{stack.url}/auth/token", json={"code": code}).status_code == 401
    gone = _post(f"{stack.url}/auth/sign-in-link", json={"code": code})
    assert gone.status_code == 401 and code not in gone.text


@pytest.mark.parametrize("body", [b"[]", b"not json", b'"code"'])
def test_sign_in_bodies_that_are_not_a_json_object_are_refused_plainly(stack, body):
    for path in ("/auth/token", "/auth/sign-in-link"):
        answer = _post(f"{stack.url}{path}", content=body, headers={"Content-Type": "application/json"})
        assert answer.status_code == 400 and answer.json() == {"message": "a JSON object is required"}
