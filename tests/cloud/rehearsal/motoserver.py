"""A moto server in its own process, for the rehearsal's data plane.

A subprocess rather than ThreadedMotoServer in the test process: other tests of the same pytest worker use moto's
in-process mock (mock_aws), which patches botocore and resets the shared backends; a separate process keeps the
rehearsal's state apart, and takes the account of the templates (MOTO_ACCOUNT_ID) without touching this process.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MotoServer:
    def __init__(self, *, account: str, log: Path, extra_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        log.parent.mkdir(parents=True, exist_ok=True)
        self._log = log.open("wb")
        env = {**os.environ, "MOTO_ACCOUNT_ID": account, **(extra_env or {})}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _wait_ready(self, seconds: float = 180.0) -> None:
        """Until moto answers: its import alone took over 10 s on a loaded 2-core machine (the former 200 quick
        attempts gave up while it was still starting, and left it running)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"moto server exited with {self._process.returncode}: see {self._log.name}")
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/data.json", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto server did not answer on {self.url} within {seconds:.0f} s")

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
        self._log.close()
