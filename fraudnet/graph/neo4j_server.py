"""Builds and runs the bundled Neo4j Community 5.26 (neo4j-launcher/, embedded DBMS with Bolt) for a workspace.

The launcher is a small Maven project (`neo4j-launcher/`). `ensure_built()` runs Maven once (jars from Maven
Central into `neo4j-launcher/lib/`, the launcher class into `target/classes/`); `start()` spawns
`java <flags> -cp "target/classes:lib/*" org.fraudnet.neo4j.Launcher --home <workspace>/neo4j …` in the
background in its own session, waits for its ready line (`FRAUDNET_NEO4J_READY bolt://127.0.0.1:PORT …`) and for
Bolt to accept connections, and records the server in `<workspace>/neo4j/server.json`. The launcher's output
goes to `<workspace>/neo4j/neo4j.log`; Neo4j's own logs are in `<workspace>/neo4j/logs/`.

Authentication: with a password (at least 8 characters) the launcher sets the `neo4j` user's password through
the system database before Bolt opens; without one, authentication is off and Bolt listens on 127.0.0.1 only.
The password is handed to the JVM through the environment, never on the command line or in server.json.
`fraudnet neo4j start` without NEO4J_PASSWORD generates one into `<workspace>/neo4j/password` (mode 0600,
`workspace_password`), which `load_settings` reads, so the CLI never starts Neo4j without authentication.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from fraudnet.errors import ConfigError, StoreError
from fraudnet.privacy import create_secret_file

__all__ = [
    "ServerInfo",
    "LAUNCHER_DIR",
    "LAUNCHER_CLASS",
    "JVM_FLAGS",
    "READY_PREFIX",
    "ensure_built",
    "start",
    "stop",
    "status",
    "running_uri",
    "log_tail",
    "PASSWORD_FILE",
    "password_path",
    "workspace_password",
]

log = logging.getLogger(__name__)

LAUNCHER_DIR = Path(os.environ.get("FRAUDNET_NEO4J_LAUNCHER") or Path(__file__).resolve().parents[2] / "neo4j-launcher")
LAUNCHER_CLASS = "org.fraudnet.neo4j.Launcher"
READY_PREFIX = "FRAUDNET_NEO4J_READY"
PASSWORD_ENV = "FRAUDNET_NEO4J_PASSWORD"
# JVM flags of the stock Neo4j 5.x configuration (see shared/NEO4J_NOTES.md).
JVM_FLAGS: tuple[str, ...] = (
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--enable-native-access=ALL-UNNAMED",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-XX:+UseG1GC",
    "-XX:-OmitStackTraceInFastThrow",
    "-Dfile.encoding=UTF-8",
)
_SIZE_RE = re.compile(r"^\d+[kmgKMG]?$")
_STOP_TIMEOUT = 90.0


@dataclass(frozen=True)
class ServerInfo:
    """A running launcher: Bolt URI, process id, bound port, Neo4j home folder and launcher log."""

    uri: str
    pid: int
    port: int
    home: Path
    log_path: Path
    auth: bool = False
    started_at: str = ""
    heap: str = ""
    pagecache: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["home"] = str(self.home)
        d["log_path"] = str(self.log_path)
        return d


def _home(workspace: Path) -> Path:
    return Path(workspace) / "neo4j"


def _server_file(workspace: Path) -> Path:
    return _home(workspace) / "server.json"


PASSWORD_FILE = "password"


def password_path(workspace: Path) -> Path:
    """`<workspace>/neo4j/password`: the generated password of the `neo4j` user (mode 0600)."""
    return _home(workspace) / PASSWORD_FILE


def workspace_password(workspace: Path, create: bool = False) -> str | None:
    """The workspace's generated Neo4j password; with `create`, made (32 random URL-safe characters, file mode
    0600 in a 0700 folder) when there is none yet. `fraudnet neo4j start` uses it when NEO4J_PASSWORD is not set,
    and `load_settings` reads it, so Neo4j never runs without authentication by default."""
    path = password_path(Path(workspace))
    if path.exists():
        text = path.read_text(encoding="utf-8").strip()
        if len(text) >= 8:
            return text
        if not create:
            return None
        raise ConfigError(f"{path}: the Neo4j password is shorter than 8 characters; delete the file to make a new one")
    if not create:
        return None
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    password = secrets.token_urlsafe(24)
    if not create_secret_file(path, password + "\n"):
        return workspace_password(workspace)
    return password


def _classpath(launcher_dir: Path) -> str:
    return f"{launcher_dir / 'target' / 'classes'}{os.pathsep}{launcher_dir / 'lib' / '*'}"


def _is_built(launcher_dir: Path) -> bool:
    cls = launcher_dir / "target" / "classes" / "org" / "fraudnet" / "neo4j" / "Launcher.class"
    src = launcher_dir / "src" / "main" / "java" / "org" / "fraudnet" / "neo4j" / "Launcher.java"
    pom = launcher_dir / "pom.xml"
    lib = launcher_dir / "lib"
    if not cls.exists() or not lib.is_dir() or not any(lib.glob("neo4j-5.*.jar")):
        return False
    built = min(cls.stat().st_mtime, (lib / ".complete").stat().st_mtime if (lib / ".complete").exists() else 0)
    return built >= max(src.stat().st_mtime if src.exists() else 0, pom.stat().st_mtime)


def ensure_built(launcher_dir: Path | None = None, timeout: float = 1800) -> Path:
    """Build the launcher with Maven if its classes or jars are missing or stale; return the launcher folder.

    Safe to call from several processes at once (a file lock serialises the build). Raises `ConfigError` when
    Java or Maven is missing and `StoreError` with Maven's output when the build fails.
    """
    launcher_dir = Path(launcher_dir or LAUNCHER_DIR)
    if not (launcher_dir / "pom.xml").exists():
        raise ConfigError(f"Neo4j launcher not found: {launcher_dir / 'pom.xml'} does not exist")
    if _is_built(launcher_dir):
        return launcher_dir
    if shutil.which("java") is None:
        raise ConfigError("Java 17 is needed to run Neo4j 5.26 (java not on PATH): "
                          "apt-get install -y openjdk-17-jdk-headless / 需要安装 Java 17")
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ConfigError("Maven is needed to fetch the Neo4j jars (mvn not on PATH): apt-get install -y maven "
                          "/ 需要安装 Maven")
    (launcher_dir / "target").mkdir(exist_ok=True)
    lock_path = launcher_dir / "target" / ".build.lock"  # target/ is git-ignored
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if _is_built(launcher_dir):
                return launcher_dir
            t0 = time.monotonic()
            log.info("building the Neo4j launcher with Maven in %s", launcher_dir)
            cmd = [mvn, "-q", "-B", "package", "dependency:copy-dependencies", "-DincludeScope=runtime",
                   "-DoutputDirectory=lib"]
            try:
                proc = subprocess.run(cmd, cwd=launcher_dir, capture_output=True, text=True, timeout=timeout,
                                      check=False)
            except subprocess.TimeoutExpired as exc:
                raise StoreError(f"Maven build of {launcher_dir} took more than {timeout:.0f} s") from exc
            if proc.returncode != 0:
                tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
                raise StoreError(f"Maven build of {launcher_dir} failed (exit {proc.returncode}):\n{tail}")
            (launcher_dir / "lib" / ".complete").write_text(datetime.now(UTC).isoformat())
            log.info("Neo4j launcher built in %.1f s", time.monotonic() - t0)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return launcher_dir


def log_tail(path: Path, lines: int = 40) -> str:
    """The last `lines` lines of a log file ('' if it does not exist)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _bolt_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _launcher_process(pid: int) -> psutil.Process | None:
    """The live launcher process with this pid, or None (dead, zombie, or another program)."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        if LAUNCHER_CLASS not in " ".join(proc.cmdline()):
            return None
        return proc
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def _read_server_file(workspace: Path) -> dict[str, Any] | None:
    path = _server_file(workspace)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable %s: %s", path, exc)
        return None


def _info_from(data: dict[str, Any]) -> ServerInfo:
    return ServerInfo(uri=data["uri"], pid=int(data["pid"]), port=int(data["port"]), home=Path(data["home"]),
                      log_path=Path(data["log_path"]), auth=bool(data.get("auth")),
                      started_at=data.get("started_at", ""), heap=data.get("heap", ""),
                      pagecache=data.get("pagecache", ""))


def running_uri(workspace: Path) -> str | None:
    """The Bolt URI of our launcher running for this workspace, or None."""
    data = _read_server_file(Path(workspace))
    if data and _launcher_process(int(data.get("pid", 0))) is not None:
        return str(data["uri"])
    return None


# Launchers started by this Python process, kept so that they are reaped when stopped.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def start(
    workspace: Path,
    port: int = 7687,
    heap: str = "2g",
    password: str | None = None,
    timeout: float = 120,
    pagecache: str = "512m",
    host: str = "127.0.0.1",
) -> ServerInfo:
    """Start Neo4j for `workspace` (data in `<workspace>/neo4j/`) and return once Bolt accepts connections.

    `port` 0 lets the OS choose a free port. `heap` and `pagecache` are sizes like `2g` / `512m`. With
    `password` (≥ 8 characters) authentication is on for user `neo4j`. If our launcher already runs for this
    workspace its `ServerInfo` is returned unchanged. Raises `StoreError` with the log tail if Neo4j does not
    come up within `timeout` seconds (the process is then stopped).
    """
    workspace = Path(workspace)
    for name, size in (("heap", heap), ("pagecache", pagecache)):
        if not _SIZE_RE.match(size):
            raise ConfigError(f"{name} size {size!r} is not like 2g / 512m")
    if password is not None and password != "" and len(password) < 8:
        raise ConfigError("Neo4j password must have at least 8 characters / 密码至少 8 个字符")
    existing = _read_server_file(workspace)
    if existing and _launcher_process(int(existing.get("pid", 0))) is not None:
        log.info("Neo4j already running for %s at %s", workspace, existing["uri"])
        return _info_from(existing)
    launcher_dir = ensure_built()
    java = shutil.which("java")
    if java is None:
        raise ConfigError("Java 17 is needed to run Neo4j 5.26 (java not on PATH) / 需要安装 Java 17")
    home = _home(workspace).resolve()
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / "neo4j.log"
    cmd = [java, f"-Xmx{heap}", *JVM_FLAGS, "-cp", _classpath(launcher_dir), LAUNCHER_CLASS,
           "--home", str(home), "--host", host, "--port", str(int(port)), "--pagecache", pagecache]
    env = dict(os.environ)
    env.pop(PASSWORD_ENV, None)
    if password:
        env[PASSWORD_ENV] = password
    t0 = time.monotonic()
    with open(log_path, "ab") as log_file:
        log_file.write(f"\n--- fraudnet start {datetime.now(UTC).isoformat()} ---\n".encode())
        log_file.flush()
        offset = log_file.tell()
        proc = subprocess.Popen(cmd, cwd=home, stdout=log_file, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    _CHILDREN[proc.pid] = proc
    uri = ""
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        with open(log_path, "rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", errors="replace")
        m = re.search(rf"^{READY_PREFIX} (bolt://\S+)", text, re.MULTILINE)
        if m:
            uri = m.group(1)
            break
        if proc.poll() is not None:
            _CHILDREN.pop(proc.pid, None)
            raise StoreError(f"Neo4j exited with code {proc.returncode} while starting (log {log_path}):\n"
                             f"{log_tail(log_path)}")
        time.sleep(0.2)
    if not uri:
        _terminate(proc.pid)
        raise StoreError(f"Neo4j did not start within {timeout:.0f} s (log {log_path}):\n{log_tail(log_path)}")
    bound_port = int(uri.rsplit(":", 1)[1])
    while not _bolt_open(host, bound_port):
        if time.monotonic() > deadline:
            _terminate(proc.pid)
            raise StoreError(f"Neo4j reported {uri} but Bolt does not accept connections (log {log_path})")
        time.sleep(0.2)
    info = ServerInfo(uri=uri, pid=proc.pid, port=bound_port, home=home, log_path=log_path, auth=bool(password),
                      started_at=datetime.now(UTC).isoformat(timespec="seconds"), heap=heap, pagecache=pagecache)
    tmp = _server_file(workspace).with_suffix(".json.tmp")
    tmp.write_text(json.dumps(info.to_dict(), indent=2), encoding="utf-8")
    tmp.replace(_server_file(workspace))
    log.info("Neo4j ready at %s (pid %d) in %.1f s", uri, proc.pid, time.monotonic() - t0)
    return info


def _terminate(pid: int, timeout: float = _STOP_TIMEOUT) -> bool:
    """SIGTERM the launcher (clean shutdown hook), SIGKILL after `timeout`; True if it was running."""
    proc = _launcher_process(pid)
    if proc is None:
        child = _CHILDREN.pop(pid, None)
        if child is not None:
            child.poll()
        return False
    proc.send_signal(signal.SIGTERM)
    child = _CHILDREN.pop(pid, None)
    try:
        if child is not None:
            child.wait(timeout)
        else:
            proc.wait(timeout)
    except (subprocess.TimeoutExpired, psutil.TimeoutExpired):
        log.warning("Neo4j (pid %d) did not stop within %.0f s; killing it", pid, timeout)
        proc.kill()
        if child is not None:
            child.wait(10)
    return True


def stop(workspace: Path, timeout: float = _STOP_TIMEOUT) -> bool:
    """Stop our Neo4j for this workspace (clean shutdown); True if one was running. Removes server.json."""
    workspace = Path(workspace)
    data = _read_server_file(workspace)
    if data is None:
        return False
    was_running = _terminate(int(data.get("pid", 0)), timeout)
    _server_file(workspace).unlink(missing_ok=True)
    return was_running


def status(workspace: Path) -> dict[str, Any]:
    """State of our Neo4j for this workspace: `running`, `bolt` (accepting connections), uri, pid, port, home…

    `stale` is True when server.json names a process that no longer runs.
    """
    workspace = Path(workspace)
    data = _read_server_file(workspace)
    if data is None:
        return {"running": False, "bolt": False, "stale": False, "home": str(_home(workspace))}
    proc = _launcher_process(int(data.get("pid", 0)))
    result = dict(data)
    result["running"] = proc is not None
    result["stale"] = proc is None
    result["bolt"] = proc is not None and _bolt_open("127.0.0.1", int(data.get("port", 0)))
    if proc is not None:
        try:
            result["rss_mb"] = round(proc.memory_info().rss / 2**20)
        except psutil.Error:
            pass
    return result
