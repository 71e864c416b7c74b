"""CLI writes while `fraudnet serve` holds the workspace: sent to that server as jobs, so the server stays the one
writer and no command fails because the service is up.

The server is found from DuckDB's lock message (the holder's process and command line, `--host`/`--port`) or
FRAUDNET_SERVER_URL. The command authenticates with a short-lived admin token it creates in the workspace's token
file (whoever can run the CLI on the workspace owns its files anyway) and revokes when done; the server's audit log
records the job under `cli-<login>`.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import re
import shlex
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from fraudnet.claims.tokens import TokenStore
from fraudnet.claims.workspace_files import lock_holder
from fraudnet.errors import FraudnetError, StoreError

__all__ = ["SERVER_URL_ENV", "serving_url", "cli_token", "run_job"]

SERVER_URL_ENV = "FRAUDNET_SERVER_URL"


def _from_command_line(command: str) -> str | None:
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    if "serve" not in words:
        return None
    host, port = "127.0.0.1", "8000"
    for i, word in enumerate(words):
        for name in ("--host", "--port"):
            value = word.split("=", 1)[1] if word.startswith(name + "=") else (
                words[i + 1] if word == name and i + 1 < len(words) else None)
            if value is not None:
                host, port = (value, port) if name == "--host" else (host, value)
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://{host}:{port}"


def serving_url(error: StoreError | str) -> str | None:
    """The URL of the `fraudnet serve` that holds the claims store (from the lock error), if it answers."""
    url = os.environ.get(SERVER_URL_ENV, "").strip().rstrip("/")
    if not url:
        # DuckDB's own message (the StoreError's cause) names the holder's PID and command line
        holder = lock_holder(str(getattr(error, "__cause__", None) or "")) or lock_holder(str(error))
        url = _from_command_line(holder[1]) if holder else None
    if not url:
        return None
    try:
        ok = httpx.get(url + "/api/health", timeout=5).status_code == 200
    except httpx.HTTPError:
        ok = False
    return url if ok else None


@contextlib.contextmanager
def cli_token(workspace: Path) -> Iterator[str]:
    """A one-hour admin token for `cli-<login>`, revoked on exit."""
    tokens = TokenStore(workspace)
    try:
        login = re.sub(r"[^A-Za-z0-9._@-]", "_", getpass.getuser())[:50] or "user"
        token = tokens.create(f"cli-{login}", "admin", expires_days=1 / 24)
        try:
            yield token
        finally:
            with contextlib.suppress(FraudnetError):
                tokens.revoke(token)
    finally:
        tokens.close()


def run_job(url: str, token: str, path: str, *, files: list[Path] | None = None, body: dict | None = None,
            echo: Callable[[str], None] = print, timeout_s: float = 24 * 3600) -> dict[str, Any]:
    """POST a job to the server (`/api/jobs/ingest` with files, `/api/jobs/detect`…), follow it, return it."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=600) as client:
        if files:
            handles = [p.open("rb") for p in files]
            try:
                response = client.post(path, files=[("files", (p.name, h)) for p, h in zip(files, handles,
                                                                                              strict=True)])
            finally:
                for h in handles:
                    h.close()
        else:
            response = client.post(path, json=body or {})
        if response.status_code != 202:
            raise FraudnetError(f"the server refused the job: HTTP {response.status_code} {response.text[:500]}")
        job_id = response.json()["job_id"]
        echo(f"sent to the running server {url} as job {job_id} / 已提交给运行中的服务")
        deadline = time.monotonic() + timeout_s
        last = ""
        while True:
            job = client.get(f"/api/jobs/{job_id}").json()
            message = job.get("message") or ""
            if message and message != last:
                echo(f"  {job.get('state')}: {message}")
                last = message
            if job.get("state") in ("succeeded", "failed"):
                return job
            if time.monotonic() > deadline:
                raise FraudnetError(f"job {job_id} did not finish within {timeout_s:g} s")
            time.sleep(0.5)
