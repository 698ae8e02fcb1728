"""Load on the local stack over loopback, bounded in count and time; every scenario prints its checks with targets
and PASS/FAIL, wall and CPU time (server process tree and this client), and the load average at start and end.

    .venv/bin/python benchmarks/load.py uploads      [--users 50 --photos 300 --client-processes 5]
    .venv/bin/python benchmarks/load.py ingest       [--events 1000]        # 20% duplicates, exactly once
    .venv/bin/python benchmarks/load.py search       [--rate 30 --seconds 60 --users 5]
    .venv/bin/python benchmarks/load.py soak         [--minutes 10]
    .venv/bin/python benchmarks/load.py throughput   [--photos 12]          # 12 MP, 2 ingest workers vs naive Pillow
                                                                           # and presigns while they ingest

uploads, search and soak run the server as its own process (`serve-child`: the local stack with 2 ingest worker
processes, background analysis off so that the models do not take the 2 cores) and drive it with real HTTP from
this one (uploads: from several client processes, so that the users' threads do not queue for one GIL). Before the
load, uploads and search time a few requests alone: the server process's CPU per request, whatever the machine's
load, beside the latency under load. ingest and throughput run the stack in this process, tapping its queue to redeliver or hold events.
Photos are small deterministic JPEGs (seeded noise) except in throughput (12 MP from a sample photo).
Latency and throughput targets are reported, never asserted; the counts (lost, doubled, leaked) are the point.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import psutil
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lambdas"))
sys.path.insert(0, str(ROOT))

from benchmarks.load_accounting import (  # noqa: E402
    Check, UploadTally, cross_tenant_hits, exactly_once, load_average, percentile, report, rss_slope_mb_per_min,
)
from photo_organizer.local_stack.client import FINAL_STATUSES, PhotoApiClient  # noqa: E402

WORDS = ["beach", "birthday", "garden", "harbour", "mountain", "picnic", "snow", "wedding"]
PASSWORD = "load benchmark password"
INGEST_WORKERS = 2


# ---- photos ---------------------------------------------------------------------------------------------------


def small_jpeg(seed: int, size: tuple[int, int] = (640, 480)) -> bytes:
    """A deterministic, unique-per-seed JPEG: coarse colour blocks plus noise (about 60-90 KB)."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(blocks).resize(size, Image.Resampling.BILINEAR), dtype=np.int16)
    pixels = np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=85)
    return out.getvalue()


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def camera_jpeg(seed: int, size: tuple[int, int] = (4000, 3000)) -> bytes:
    """A 12 MP camera-like JPEG: a real sample photo upscaled, with seeded sensor noise (unique per seed)."""
    base = Image.open(ROOT / "samples" / "coffee_with_text.jpg").convert("RGB").resize(size, Image.Resampling.BICUBIC)
    rng = np.random.default_rng(seed)
    pixels = np.asarray(base, dtype=np.int16) + rng.normal(0, 6, (size[1], size[0], 3)).astype(np.int16)
    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "BenchCam", "B1"
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=92, exif=exif.tobytes())
    return out.getvalue()


# ---- measuring --------------------------------------------------------------------------------------------------


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its live descendants."""
    total = 0.0
    try:
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
    except psutil.NoSuchProcess:
        pass
    return total


def process_cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def tree_rss(pid: int) -> tuple[int, int]:
    """RSS bytes of the process itself, and of its descendants together (the ingest workers)."""
    root = psutil.Process(pid)
    own = root.memory_info().rss
    children = 0
    for proc in root.children(recursive=True):
        try:
            children += proc.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return own, children


class Meter:
    """Wall time, CPU of the server's process tree and of this client, load average at start and end."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.load_start = load_average()
        self._wall = self.began = time.perf_counter()
        self._client = self._client_cpu()
        self._server = tree_cpu_seconds(server_pid) if server_pid != os.getpid() else 0.0
        self._serving = process_cpu_seconds(server_pid)

    @staticmethod
    def _client_cpu() -> float:
        """This process and its finished children but the server (client processes; the server ends later)."""
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + children.ru_utime + children.ru_stime

    def server_cpu(self) -> float:
        return tree_cpu_seconds(self.server_pid) - self._server

    def serving_cpu(self) -> float:
        """The serving process alone (gateway, API, indexing), without its ingest workers."""
        return process_cpu_seconds(self.server_pid) - self._serving

    def facts(self) -> dict[str, str]:
        wall = time.perf_counter() - self._wall
        client = self._client_cpu() - self._client
        if self.server_pid == os.getpid():
            cpu = f"{tree_cpu_seconds(os.getpid()) - 0:.1f} s (this process and its workers, from their start)"
        else:
            cpu = f"{tree_cpu_seconds(self.server_pid) - self._server:.1f} s server tree, {client:.1f} s client"
        return {"wall": f"{wall:.1f} s", "cpu": cpu, "load average 1/5/15 min": f"start {self.load_start}, end {load_average()}"}


def solo_cost(server_pid: int, call, count: int = 20) -> tuple[float, float]:
    """(p50 wall ms, CPU ms of the server process itself) of `count` calls made one at a time: what one request
    costs with nothing else in flight (the CPU figure holds whatever the machine's load)."""
    server = psutil.Process(server_pid)
    call(-1)  # warm
    cpu = sum(server.cpu_times()[:2])
    walls = []
    for k in range(count):
        began = time.perf_counter()
        call(k)
        walls.append((time.perf_counter() - began) * 1000)
    return percentile(walls, 50), (sum(server.cpu_times()[:2]) - cpu) * 1000 / count


# ---- the server, as its own process -------------------------------------------------------------------------------


def add_users(data_dir: Path, count: int, prefix: str = "user") -> list[str]:
    from photo_organizer.local_stack.identity import LocalIdentityProvider

    identity = LocalIdentityProvider(data_dir, issuer="unused")
    names = [f"{prefix}{n:03d}" for n in range(count)]
    with ThreadPoolExecutor(4) as pool:  # scrypt releases the GIL
        list(pool.map(lambda name: identity.add_user(name, PASSWORD), names))
    return names


@contextmanager
def server_process(data_dir: Path):
    """`serve-child` in a subprocess; yields (url, pid, tokens_for(names))."""
    child = subprocess.Popen(
        [sys.executable, __file__, "serve-child", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE, text=True, env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    try:
        line = child.stdout.readline().strip()
        if not line.startswith("URL "):
            raise RuntimeError(f"server did not start: {line!r}")
        url = line.split()[1]

        def tokens_for(names: list[str]) -> dict[str, str]:
            from photo_organizer.local_stack.identity import LocalIdentityProvider

            identity = LocalIdentityProvider(data_dir, issuer=f"{url}/auth")
            return {name: identity.issue_token(identity.get_user(name)) for name in names}

        yield url, child.pid, tokens_for
    finally:
        child.terminate()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()


def serve_child(data_dir: Path) -> None:
    from photo_organizer.local_stack.stack import LocalStack

    stack = LocalStack(data_dir, port=0, analyse=False, ingest_workers=INGEST_WORKERS)
    stack.start_in_background()
    stack.ingest_workers.wait_started()  # measured from warm workers, as a server that has been up a while
    print(f"URL {stack.url}", flush=True)
    stop = threading.Event()
    import signal

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    stack.stop()


def subs_of(data_dir: Path, names: list[str]) -> dict[str, str]:
    from photo_organizer.local_stack.identity import LocalIdentityProvider

    identity = LocalIdentityProvider(data_dir, issuer="unused")
    return {name: identity.get_user(name).sub for name in names}


def wait_final(client: PhotoApiClient, photo_ids: list[str], deadline: float) -> dict[str, str]:
    statuses: dict[str, str] = {}
    for photo_id in photo_ids:
        while True:
            status = client.photo(photo_id)["status"]
            if status in FINAL_STATUSES or time.monotonic() > deadline:
                statuses[photo_id] = status
                break
            time.sleep(0.1)
    return statuses


def listed_ids(client: PhotoApiClient) -> list[str]:
    return [item["photo_id"] for item in client.all_photos()]


# ---- 1. uploads ---------------------------------------------------------------------------------------------------


def plan_user_uploads(user_index: int, per_user: int) -> list[tuple[str, bytes, str]]:
    """(file name, bytes, expected) for one user: the last photo repeats the first's bytes (one of the pair ends
    READY, the other DUPLICATE: ingest order decides which), and every tenth user sends one truncated JPEG."""
    plan = []
    for n in range(per_user):
        seed = user_index * 1000 + n
        data = small_jpeg(seed)
        expected = "READY"
        if n == per_user - 1 and per_user > 1:
            data, expected = small_jpeg(user_index * 1000), "PAIR"
        elif user_index % 10 == 0 and n == 1:
            data, expected = truncated(data), "REJECTED"
        plan.append((f"{WORDS[seed % len(WORDS)]}_{user_index}_{n}.jpg", data, expected))
    return plan


_start_line = None  # the client processes' start barrier (multiprocessing.Barrier), inherited through fork


def _wait_at(barrier) -> None:
    global _start_line
    _start_line = barrier


def upload_as_users(url: str, work: list[tuple[str, str, list[tuple[str, bytes, str]]]]) -> dict:
    """One client process: a thread per user (name, token, plan). Every user's client is made first (an httpx
    client builds an SSL context: ~35 ms of CPU each, 2 per user), then the process waits at the start line with
    the others and the parent, so the users start together and no client set-up runs during the measured load
    (with a fixed 2 s head start, set-up on a loaded machine ran on into the first presigns, its CPU taken from
    the server's). Returns the presign latencies, each user's photo ids, the (first, repeat) pairs, expectations,
    failures, and this process's CPU seconds from the start line on."""
    out: dict = {"presign_ms": [], "ids_of": {}, "pairs": [], "expected": {}, "failed": 0}
    lock = threading.Lock()
    go = threading.Event()
    clients = [PhotoApiClient(url, token) for _, token, _ in work]

    def one_user(item: tuple[str, str, list[tuple[str, bytes, str]]], client: PhotoApiClient) -> None:
        name, _, plan = item
        ids: list[str] = []
        go.wait()
        first = None
        for filename, data, expected in plan:
            try:
                began = time.perf_counter()
                ticket = client.start_upload(filename, "image/jpeg", len(data))
                took = (time.perf_counter() - began) * 1000
                client.send_file(ticket, data, filename, "image/jpeg")
            except Exception as exc:  # counted as lost: the user saw a failure
                print(f"  upload failed for {name}: {exc}", file=sys.stderr)
                with lock:
                    out["failed"] += 1
                continue
            photo_id = ticket["photo_id"]
            first = first or photo_id
            ids.append(photo_id)
            with lock:
                out["presign_ms"].append(took)
                if expected == "PAIR":
                    out["pairs"].append((first, photo_id))
                else:
                    out["expected"][photo_id] = expected
        with lock:
            out["ids_of"][name] = ids

    try:
        with ThreadPoolExecutor(len(work)) as pool:
            users = [pool.submit(one_user, item, client) for item, client in zip(work, clients, strict=True)]
            _start_line.wait(timeout=300)
            cpu = time.process_time()
            go.set()
            for user in users:
                user.result()
        out["cpu_s"] = time.process_time() - cpu
    finally:
        for client in clients:
            client.close()
    return out


def run_uploads(users: int, photos: int, client_processes: int = 5) -> bool:
    """`client_processes`: the users are spread over that many client processes. In one, 50 threads queued for
    its GIL and every presign's measured time included that wait (client CPU ~1 core: p95 ~500 ms whatever the
    server did)."""
    per_user = max(1, photos // users)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        names = add_users(data_dir, users)
        plans = {name: plan_user_uploads(i, per_user) for i, name in enumerate(names)}
        with server_process(data_dir) as (url, pid, tokens_for):
            tokens = tokens_for(names)
            with PhotoApiClient(url, tokens[names[0]]) as client:  # its pending photos are never uploaded: unlisted
                solo = solo_cost(pid, lambda k: client.start_upload(f"solo_{k}.jpg", "image/jpeg", 1000))
            tally, presign_ms = UploadTally(), []
            pairs: list[tuple[str, str]] = []
            ids_of: dict[str, list[str]] = {}
            processes = max(1, min(client_processes, users))
            work = [[(name, tokens[name], plans[name]) for name in names[k::processes]] for k in range(processes)]
            context = multiprocessing.get_context("fork")  # no threads yet in this process: the plans are inherited
            start_line = context.Barrier(processes + 1)
            client_cpu = 0.0
            with ProcessPoolExecutor(processes, mp_context=context, initializer=_wait_at, initargs=(start_line,)) as pool:
                parts = pool.map(upload_as_users, [url] * processes, work)
                start_line.wait(timeout=300)  # every client process has made its users' clients
                meter = Meter(pid)
                for part in parts:
                    client_cpu += part["cpu_s"]
                    presign_ms += part["presign_ms"]
                    ids_of |= part["ids_of"]
                    pairs += part["pairs"]
                    tally.failed_requests += part["failed"]
                    for photo_id, expected in part["expected"].items():
                        tally.expect(photo_id, expected)
            uploaded_at = time.perf_counter()
            upload_phase = uploaded_at - meter.began
            statuses: dict[str, str] = {}
            listed: list[str] = []
            deadline = time.monotonic() + 300
            for name in names:
                with PhotoApiClient(url, tokens[name]) as client:
                    statuses |= wait_final(client, ids_of[name], deadline)
                    listed += listed_ids(client)
            drained = time.perf_counter() - uploaded_at
            for first, second in pairs:  # one READY and one DUPLICATE, in either order
                got = sorted((statuses.get(first, "?"), statuses.get(second, "?")))
                tally.expect(first, statuses.get(first) if got == ["DUPLICATE", "READY"] else "READY|DUPLICATE pair")
                tally.expect(second, statuses.get(second) if got == ["DUPLICATE", "READY"] else "READY|DUPLICATE pair")
            audit = tally.audit(statuses, listed)
            server_cpu, serving_cpu = meter.server_cpu(), meter.serving_cpu()
            facts = meter.facts()
    p95 = percentile(presign_ms, 95)
    checks = [
        Check("lost (not final, or upload failed)", str(audit["lost"]), "0", audit["lost"] == 0),
        Check("wrong end state", str(audit["wrong_status"]), "0", audit["wrong_status"] == 0),
        Check("READY but not listed / listed twice", f"{audit['unlisted']}/{audit['listed_twice']}", "0/0",
              audit["unlisted"] == 0 and audit["listed_twice"] == 0),
        Check("presign POST /uploads p95 ms", p95, "< 150", p95 < 150),
    ]
    facts = {
        "presign alone: p50 ms, server process CPU ms per request": f"{solo[0]:.1f}, {solo[1]:.1f}",
        "users / photos": f"{users} / {audit['uploaded']}",
        "end states": {k[7:]: v for k, v in audit.items() if k.startswith("status_")},
        "presign p50 / p99 ms": f"{percentile(presign_ms, 50):.1f} / {percentile(presign_ms, 99):.1f}",
        "last upload -> all final": f"{drained:.1f} s",
        "client processes x threads": f"{processes} x {-(-users // processes)}",
        "client CPU while uploading (from the start line)":
            f"{client_cpu:.1f} s in {upload_phase:.1f} s ({client_cpu / max(upload_phase, 1e-9):.2f} cores of the 2)",
        "server CPU per photo (presign + POST + ingest + status polls)":
            f"{server_cpu * 1000 / max(1, audit['uploaded']):.1f} ms: serving process "
            f"{serving_cpu * 1000 / max(1, audit['uploaded']):.1f}, ingest workers "
            f"{(server_cpu - serving_cpu) * 1000 / max(1, audit['uploaded']):.1f}",
        **facts,
    }
    print(report(f"1. {users} users upload {users * per_user} photos through the local gateway", checks, facts))
    return all(c.passed for c in checks)


# ---- 2. ingest events, 20% duplicates ------------------------------------------------------------------------------


def repeated_seed(k: int, owners: int, unique: int) -> int:
    """The seed of an earlier unique upload (seeds 0..unique-1) of the same owner (k % owners) for upload k."""
    owner = k % owners
    return owner + owners * ((k * 7) % max(1, (unique - owner - 1) // owners + 1))


def count_blob_files(folder: Path) -> int:
    from photo_organizer.adapters.local.disk_blobs import META_SUFFIX

    return sum(1 for p in folder.rglob("*") if p.is_file() and not p.name.endswith(META_SUFFIX) and not p.name.startswith("."))


def run_ingest(events: int) -> bool:
    from photo_organizer.local_stack.stack import LocalStack

    duplicates = events // 5
    redelivered, same_bytes = duplicates // 2, duplicates - duplicates // 2
    uploads = events - redelivered
    unique = uploads - same_bytes
    owners = 10
    with tempfile.TemporaryDirectory() as tmp, LocalStack(Path(tmp), analyse=False, ingest_workers=INGEST_WORKERS) as stack:
        sent: list[str] = []
        send = stack.queue.send

        def tap(body):  # the benchmark keeps every event body, to deliver some of them again
            sent.append(body if isinstance(body, str) else json.dumps(body))
            return send(body)

        stack.queue.send = tap
        made_ready: Counter[str] = Counter()
        on_ready = stack.services.ingest.on_ready

        def counting(photo) -> None:
            made_ready[photo.photo_id] += 1
            if on_ready is not None:
                on_ready(photo)

        stack.services.ingest.on_ready = counting
        users = [stack.identity.add_user(f"owner{n}", PASSWORD)[0] for n in range(owners)]
        # upload k of owner k % owners; the last `same_bytes` uploads repeat an earlier upload of the same owner
        plan = [(k % owners, k) for k in range(unique)]
        plan += [(k % owners, repeated_seed(k, owners, unique)) for k in range(unique, uploads)]
        rng = random.Random(13)
        rng.shuffle(plan)
        meter = Meter(os.getpid())
        clients = [PhotoApiClient(stack.url, stack.identity.issue_token(u)) for u in users]
        photo_owner: dict[str, int] = {}
        lock = threading.Lock()
        early_every = max(1, uploads // max(1, redelivered // 2))
        again: list[str] = []

        def upload(item: tuple[int, int]) -> None:
            owner, seed = item
            photo_id = clients[owner].upload_bytes(small_jpeg(seed + 7), f"photo_{seed}.jpg", "image/jpeg")
            with lock:
                photo_owner[photo_id] = owner
                # Half the redeliveries go out right behind the first delivery (both may be in flight at once).
                if len(photo_owner) % early_every == 0 and len(again) < redelivered // 2:
                    again.append(sent[-1])
                    send(sent[-1])

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(upload, plan))
        stack.queue.wait_until_empty(timeout=600)
        for body in rng.sample(sent[:uploads], redelivered - len(again)):  # the rest after the queue drained
            again.append(body)
            send(body)
        stack.queue.wait_until_empty(timeout=600)
        for client in clients:
            client.close()
        facts = meter.facts()
        statuses = Counter()
        for photo_id, owner in photo_owner.items():
            photo = stack.services.metadata.get_photo(users[owner].sub, photo_id)
            statuses[photo.status.value if photo else "MISSING"] += 1
        data = Path(tmp) / "blobs"
        # the library audit (services/library_audit.py): blobs, records and index documents agree, per owner
        audits = [stack.services.library_audit.audit(user.sub) for user in users]
        for finding in [line for r in audits for line in r.lines()][:10]:
            print(f"  finding: {finding}")
        found = {
            "records READY": statuses["READY"],
            "records DUPLICATE": statuses["DUPLICATE"],
            "records not final": sum(v for k, v in statuses.items() if k not in FINAL_STATUSES),
            "originals": count_blob_files(data / "originals"),
            "derivatives (preview + thumbnail)": count_blob_files(data / "derivatives"),
            "indexed photos (distinct)": len(made_ready),
            "index documents": sum(r.documents or 0 for r in audits),
            "audit findings (blobs, records, index)": sum(len(r.findings) for r in audits),
            "dead letters": len(stack.queue.dead_letters()),
            "deliveries": len(sent) + len(again),
        }
    expected = {
        "records READY": unique, "records DUPLICATE": same_bytes, "records not final": 0, "originals": uploads,
        "derivatives (preview + thumbnail)": 2 * uploads, "indexed photos (distinct)": unique,
        "index documents": unique, "audit findings (blobs, records, index)": 0,
        "dead letters": 0, "deliveries": events,
    }
    checks = [Check(name, str(got), str(want), ok) for name, (want, got, ok) in exactly_once(expected, found).items()]
    facts = {"events": f"{events}: {unique} unique uploads, {same_bytes} same bytes again, {redelivered} redelivered",
             **facts}
    print(report(f"2. {events} ingest events with {duplicates} duplicates, processed exactly once", checks, facts))
    return all(c.passed for c in checks)


# ---- 3. searches ----------------------------------------------------------------------------------------------------


def seed_library(url: str, tokens: dict[str, str], per_user: int) -> dict[str, str]:
    """Uploads `per_user` photos for each user (file names share words across users); photo_id -> user."""
    owner_of: dict[str, str] = {}
    lock = threading.Lock()

    def one_user(item: tuple[int, str]) -> None:
        index, name = item
        with PhotoApiClient(url, tokens[name]) as client:
            ids = []
            for n in range(per_user):
                seed = 500_000 + index * 1000 + n
                ids.append(client.upload_bytes(small_jpeg(seed), f"{WORDS[seed % len(WORDS)]}_{n}.jpg", "image/jpeg"))
            wait_final(client, ids, time.monotonic() + 300)
            with lock:
                owner_of.update({photo_id: name for photo_id in ids})

    with ThreadPoolExecutor(len(tokens)) as pool:
        list(pool.map(one_user, enumerate(tokens)))
    return owner_of


def open_loop(rate: float, seconds: float, request, *, threads: int = 16) -> tuple[list[float], list[float], float]:
    """Sends request(k) at t0 + k / rate from a pool of threads; (latencies ms, lateness ms of each send, seconds
    from the first send to the last answer)."""
    total = int(rate * seconds)
    latencies, lateness, lock = [], [], threading.Lock()
    counter = iter(range(total))
    t0 = time.perf_counter() + 0.2

    def worker() -> None:
        while True:
            with lock:
                k = next(counter, None)
            if k is None:
                return
            due = t0 + k / rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            began = time.perf_counter()
            request(k)
            done = time.perf_counter()
            with lock:
                latencies.append((done - began) * 1000)
                lateness.append(max(0.0, began - due) * 1000)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return latencies, lateness, time.perf_counter() - t0


def run_search(rate: float, seconds: float, users: int, per_user: int = 20) -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        names = add_users(data_dir, users, prefix="searcher")
        with server_process(data_dir) as (url, pid, tokens_for):
            tokens = tokens_for(names)
            owner_of = seed_library(url, tokens, per_user)
            clients = {name: httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tokens[name]}"}, timeout=30)
                       for name in names}
            queries = [*WORDS, "", "photo", "jpg"]
            leaks, errors, hits, lock = 0, 0, 0, threading.Lock()

            def search(k: int) -> None:
                nonlocal leaks, errors, hits
                name = names[k % len(names)]
                try:
                    response = clients[name].get("/search", params={"q": queries[k % len(queries)], "limit": 50})
                except httpx.HTTPError:
                    with lock:
                        errors += 1
                    return
                with lock:
                    if response.status_code != 200:
                        errors += 1
                        return
                    ids = [item["photo_id"] for item in response.json()["items"]]
                    hits += len(ids)
                    leaks += cross_tenant_hits(name, ids, owner_of)

            for k in range(20):  # warm-up (the query embedder loads on first use)
                search(k)
            solos = {
                label: solo_cost(pid, lambda k, q=q: clients[names[0]].get(
                    "/search", params={"q": q or f"{WORDS[k % len(WORDS)]} trip{k}", "limit": 50}))
                for label, q in (("a repeated query", "beach"), ("a new query each time", ""))
            }
            leaks = errors = hits = 0
            meter = Meter(pid)
            latencies, lateness, took = open_loop(rate, seconds, search)
            server_cpu = meter.server_cpu()
            facts = meter.facts()
            for client in clients.values():
                client.close()
    p95 = percentile(latencies, 95)
    achieved = len(latencies) / took  # below the rate when the server could not keep up
    checks = [
        Check("cross-tenant hits (every hit's owner)", str(leaks), "0", leaks == 0),
        Check("errors", str(errors), "0", errors == 0),
        Check("search p95 ms", p95, "< 100", p95 < 100),
        Check("rate sent /s", achieved, f">= {rate * 0.95:.1f}", achieved >= rate * 0.95),
    ]
    facts = {
        **{f"search alone, {label}: p50 ms, server process CPU ms per request": f"{wall:.1f}, {cpu:.1f}"
           for label, (wall, cpu) in solos.items()},
        "users x photos": f"{users} x {per_user}", "searches": len(latencies), "hits checked": hits,
        "p50 / p99 ms": f"{percentile(latencies, 50):.1f} / {percentile(latencies, 99):.1f}",
        "send lateness p95 ms (generator behind schedule)": f"{percentile(lateness, 95):.1f}",
        "server CPU per search": f"{server_cpu * 1000 / max(1, len(latencies)):.1f} ms",
        **facts,
    }
    print(report(f"3. {rate:g} searches/s for {seconds:g} s, {users} users with their own photos", checks, facts))
    return all(c.passed for c in checks)


# ---- 4. soak --------------------------------------------------------------------------------------------------------

SOAK_SLOPE_MB_PER_MIN = 1.0


def run_soak(minutes: float, users: int = 4, sample_seconds: float = 5.0) -> bool:
    seconds = minutes * 60
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        names = add_users(data_dir, users, prefix="soak")
        with server_process(data_dir) as (url, pid, tokens_for):
            tokens = tokens_for(names)
            owner_of = seed_library(url, tokens, 5)
            samples: list[tuple[float, int, int]] = []
            stop = threading.Event()
            counts, lock = Counter(), threading.Lock()
            uploaded: dict[str, list[str]] = {name: [] for name in names}
            meter = Meter(pid)
            began = time.perf_counter()

            def sampler() -> None:
                while not stop.is_set():
                    own, workers = tree_rss(pid)
                    samples.append((time.perf_counter() - began, own, workers))
                    stop.wait(sample_seconds)

            def traffic(index: int) -> None:
                """Each user per second: a search, a listing every 2 s, an upload every 4 s (about one/s in all)."""
                name = names[index]
                with PhotoApiClient(url, tokens[name]) as client:
                    tick = 0
                    while not stop.is_set():
                        tick += 1
                        try:
                            ids = [h["photo_id"] for h in client.search(WORDS[tick % len(WORDS)])["items"]]
                            with lock:
                                counts["searches"] += 1
                                counts["cross-tenant hits"] += cross_tenant_hits(name, ids, owner_of)
                            if tick % 2 == 0:
                                client.list_photos(limit=50)
                                counts["listings"] += 1
                            if tick % 4 == index % 4:
                                seed = 900_000 + index * 100_000 + tick
                                photo_id = client.upload_bytes(small_jpeg(seed), f"soak_{tick}.jpg", "image/jpeg")
                                with lock:
                                    owner_of[photo_id] = name
                                    uploaded[name].append(photo_id)
                                    counts["uploads"] += 1
                        except Exception as exc:
                            with lock:
                                counts["errors"] += 1
                            print(f"  soak request failed: {exc}", file=sys.stderr)
                        stop.wait(1.0)

            threads = [threading.Thread(target=sampler)] + [threading.Thread(target=traffic, args=(i,)) for i in range(users)]
            for thread in threads:
                thread.start()
            stop.wait(seconds)
            stop.set()
            for thread in threads:
                thread.join()
            tally = UploadTally()
            statuses, listed = {}, []
            for name in names:
                with PhotoApiClient(url, tokens[name]) as client:
                    statuses |= wait_final(client, uploaded[name], time.monotonic() + 120)
                    listed += [pid_ for pid_ in listed_ids(client) if pid_ in set(uploaded[name])]
                for photo_id in uploaded[name]:
                    tally.expect(photo_id, "READY")
            audit = tally.audit(statuses, listed)
            facts = meter.facts()
    server_slope = rss_slope_mb_per_min([(t, own) for t, own, _ in samples])
    worker_slope = rss_slope_mb_per_min([(t, workers) for t, _, workers in samples])
    checks = [
        Check("server RSS slope MB/min (after 25%)", server_slope, f"<= {SOAK_SLOPE_MB_PER_MIN}", server_slope <= SOAK_SLOPE_MB_PER_MIN),
        Check("ingest workers RSS slope MB/min", worker_slope, f"<= {SOAK_SLOPE_MB_PER_MIN}", worker_slope <= SOAK_SLOPE_MB_PER_MIN),
        Check("errors", str(counts["errors"]), "0", counts["errors"] == 0),
        Check("cross-tenant hits", str(counts["cross-tenant hits"]), "0", counts["cross-tenant hits"] == 0),
        Check("uploads lost / wrong", f"{audit['lost']}/{audit['wrong_status']}", "0/0",
              audit["lost"] == 0 and audit["wrong_status"] == 0),
    ]
    step = max(1, len(samples) // 10)
    curve = ", ".join(f"{t / 60:.1f}m {own / 1e6:.0f}+{workers / 1e6:.0f}" for t, own, workers in samples[::step])
    facts = {
        "traffic": dict(counts), "RSS over time (server + workers MB)": curve,
        "RSS first -> last (server MB)": f"{samples[0][1] / 1e6:.0f} -> {samples[-1][1] / 1e6:.0f}", **facts,
    }
    print(report(f"4. soak, {minutes:g} min of mixed upload/search/list traffic ({users} users)", checks, facts))
    return all(c.passed for c in checks)


# ---- 5. ingest throughput: 2 worker processes vs naive Pillow -------------------------------------------------------


def naive_ingest(data: bytes) -> tuple[bytes, bytes]:
    """What a first version would do: open, full decode, upright the full frame, LANCZOS from full size, save."""
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data)).convert("RGB"))
    out = []
    for edge, fmt in ((1600, "JPEG"), (320, "WEBP")):
        scale = edge / max(image.size)
        resized = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        resized.save(buffer, fmt, quality=85)
        out.append(buffer.getvalue())
    return out[0], out[1]


def product_ingest(photos: list[bytes], workers: int) -> tuple[float, float, int]:
    """(seconds, CPU seconds of the process tree, photos READY): the local stack's queue, ingest handler and
    records, with the upload events held back until every upload is in and then released at once."""
    from photo_organizer.local_stack.stack import LocalStack

    with tempfile.TemporaryDirectory() as tmp, LocalStack(Path(tmp), analyse=False, ingest_workers=workers) as stack:
        held: list = []
        send = stack.queue.send
        user, _ = stack.identity.add_user("throughput", PASSWORD)
        with PhotoApiClient(stack.url, stack.identity.issue_token(user)) as client:
            warm = [client.upload_bytes(small_jpeg(n), f"warm{n}.jpg", "image/jpeg") for n in range(2 * max(1, workers))]
            wait_final(client, warm, time.monotonic() + 120)  # worker processes started and imported
            stack.queue.send = held.append
            ids = [client.upload_bytes(data, f"camera_{n}.jpg", "image/jpeg") for n, data in enumerate(photos)]
            cpu = tree_cpu_seconds(os.getpid())
            began = time.perf_counter()
            for body in held:
                send(body)
            statuses = wait_final(client, ids, time.monotonic() + 900)
            seconds = time.perf_counter() - began
            cpu = tree_cpu_seconds(os.getpid()) - cpu
    return seconds, cpu, sum(1 for s in statuses.values() if s == "READY")


def presigns_while_ingesting(photos: list[bytes], niceness: int, every: float = 0.05) -> tuple[list[float], list[float], float]:
    """(presign ms alone, presign ms while `photos` ingest, seconds the ingest took), the ingest workers at
    `niceness` below this process (the server): a presign every `every` seconds from the first event released
    until the queue is empty. The client is this process too, equally in both runs."""
    from dataclasses import replace

    from photo_organizer.local_stack.stack import LocalStack
    from photo_organizer.settings import Settings

    env = {k: v for k, v in os.environ.items() if k.startswith("PO_")} | {"PO_BACKEND": "local"}
    settings = replace(Settings.from_env(env), background_niceness=niceness)
    with tempfile.TemporaryDirectory() as tmp, LocalStack(Path(tmp), settings=settings, analyse=False,
                                                          ingest_workers=INGEST_WORKERS) as stack:
        held: list = []
        send = stack.queue.send
        user, _ = stack.identity.add_user("interactive", PASSWORD)
        with PhotoApiClient(stack.url, stack.identity.issue_token(user)) as client:
            warm = [client.upload_bytes(small_jpeg(n), f"warm{n}.jpg", "image/jpeg") for n in range(2 * INGEST_WORKERS)]
            wait_final(client, warm, time.monotonic() + 120)
            stack.queue.send = held.append
            for n, data in enumerate(photos):
                client.upload_bytes(data, f"camera_{n}.jpg", "image/jpeg")

            def presign() -> float:
                began = time.perf_counter()
                client.start_upload("next.jpg", "image/jpeg", 1000)
                return (time.perf_counter() - began) * 1000

            alone = [presign() for _ in range(20)]
            began = time.perf_counter()
            for body in held:
                send(body)
            during = []
            while stack.queue.depth() and time.perf_counter() - began < 900:
                during.append(presign())
                time.sleep(every)
            took = time.perf_counter() - began
    return alone, during, took


def run_throughput(count: int) -> bool:
    load_start = load_average()
    photos = [camera_jpeg(seed) for seed in range(count)]
    began, cpu = time.perf_counter(), time.process_time()
    for data in photos:
        naive_ingest(data)
    naive_s, naive_cpu = time.perf_counter() - began, time.process_time() - cpu
    one_s, one_cpu, one_ready = product_ingest(photos, 0)
    two_s, two_cpu, two_ready = product_ingest(photos, INGEST_WORKERS)
    ratio = naive_s / two_s
    from photo_organizer.settings import Settings

    niceness = Settings().background_niceness
    interactive = {n: presigns_while_ingesting(photos, n) for n in (0, niceness)}
    checks = [
        Check("photos READY (1 process / 2 workers)", f"{one_ready}/{two_ready}", f"{count}/{count}",
              one_ready == count and two_ready == count),
        Check(f"speed-up, {INGEST_WORKERS} workers vs naive", ratio, ">= 3.0x", ratio >= 3.0),
    ]
    facts = {
        "photos": f"{count} x 12 MP JPEG ({sum(map(len, photos)) / count / 1e6:.1f} MB each)",
        "naive Pillow, this process": f"{count / naive_s:.2f} photos/s (wall {naive_s:.1f} s, CPU {naive_cpu:.1f} s)",
        "product, in-process (ingest_workers=0)":
            f"{count / one_s:.2f} photos/s (wall {one_s:.1f} s, CPU {one_cpu:.1f} s), {naive_s / one_s:.2f}x naive",
        f"product, {INGEST_WORKERS} worker processes":
            f"{count / two_s:.2f} photos/s (wall {two_s:.1f} s, CPU {two_cpu:.1f} s), {ratio:.2f}x naive",
        "CPU per photo, naive / 2 workers (load-independent)": f"{naive_cpu / max(two_cpu, 1e-9):.2f}x",
        **{f"presign while they ingest, workers at niceness {n}{' (the default)' if n == niceness else ''}":
           f"p50 {percentile(during, 50):.1f} / p95 {percentile(during, 95):.1f} ms ({len(during)} presigns; alone "
           f"p50 {percentile(alone, 50):.1f} ms), ingest {took:.1f} s"
           for n, (alone, during, took) in interactive.items()},
        "load average 1/5/15 min": f"start {load_start}, end {load_average()}",
    }
    print(report("5. local ingest throughput (validate + derive + record), 12 MP photos", checks, facts))
    return all(c.passed for c in checks)


OPTIONS = {  # the full parameters by default; shorten them to check that a scenario works
    "uploads": [("--users", int, 50), ("--photos", int, 300), ("--client-processes", int, 5)],
    "ingest": [("--events", int, 1000)],
    "search": [("--rate", float, 30), ("--seconds", float, 60), ("--users", int, 5)],
    "soak": [("--minutes", float, 10)],
    "throughput": [("--photos", int, 12)],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for command, options in OPTIONS.items():
        sub = commands.add_parser(command)
        for flag, kind, default in options:
            sub.add_argument(flag, type=kind, default=default)
    child = commands.add_parser("serve-child", help="(internal) the server process of uploads/search/soak")
    child.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "serve-child":
        serve_child(args.data_dir)
        return 0
    runners = {
        "uploads": lambda: run_uploads(args.users, args.photos, args.client_processes),
        "ingest": lambda: run_ingest(args.events),
        "search": lambda: run_search(args.rate, args.seconds, args.users),
        "soak": lambda: run_soak(args.minutes),
        "throughput": lambda: run_throughput(args.photos),
    }
    return 0 if runners[args.command]() else 1


if __name__ == "__main__":
    sys.exit(main())
