"""`intentrec bench serve`: HTTP load against /recommend, closed and open loop.

The load generator speaks minimal HTTP/1.1 (keep-alive, Content-Length bodies): a general
client would cost more CPU per request than the server does, and the two share the machine.
Concurrent clients and the open loop run over asyncio streams; the one-client run, where
latency is the figure, over a blocking socket that puts no event loop between the answer and
the clock. Open-loop latency runs from each request's scheduled send time, so a stalled server
cannot hide its queueing (no coordinated omission). A one-client run of `GET /healthz` gives the
floor under any endpoint: the round trip through the client, the kernel and the HTTP layer.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

TARGETS = {
    "p99_ms_at_200rps": 15.0,
    "peak_rps": 500.0,
    "errors": 0,
    "explain_p50_ms_added": 0.5,
}
N_USERS = 200  # users seeded with a history through /events
K = 10
HEALTHZ = "GET /healthz c=1"


@dataclass
class BenchOptions:
    url: str | None
    bundle: Path | None
    duration_s: float
    concurrency: list[int]
    rates: list[float]
    budget_ms: float
    progress: bool = True


@dataclass
class Scenario:
    name: str
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    degraded: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0

    def summary(self) -> dict:
        lat = np.asarray(self.latencies_ms) if self.latencies_ms else np.asarray([np.nan])
        return {
            "scenario": self.name,
            "requests": len(self.latencies_ms),
            "throughput_rps": round(len(self.latencies_ms) / self.elapsed_s, 1),
            "p50_ms": round(float(np.percentile(lat, 50)), 3),
            "p95_ms": round(float(np.percentile(lat, 95)), 3),
            "p99_ms": round(float(np.percentile(lat, 99)), 3),
            "errors": self.errors,
            "degraded": self.degraded,
            "degraded_reasons": self.reasons,
        }


def _request_head(method: str, path: str, host: str, length: int, headers: str) -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"{headers}Content-Length: {length}\r\n\r\n"
    ).encode()


def _parse_head(head: bytes) -> tuple[int, int]:
    """Status and Content-Length of a response head (the bytes before the blank line)."""
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return status, length


class Connection:
    """One keep-alive HTTP/1.1 connection that posts JSON, over asyncio streams."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def post(self, path: str, body: bytes, headers: str = "") -> tuple[int, bytes]:
        return await self.request("POST", path, body, headers)

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: str = ""
    ) -> tuple[int, bytes]:
        if self.writer is None:
            await self.open()
        self.writer.write(_request_head(method, path, self.host, len(body), headers) + body)
        status, length = _parse_head(await self.reader.readuntil(b"\r\n\r\n"))
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class BlockingConnection:
    """The same over a blocking socket, for one client alone."""

    TIMEOUT_S = 30

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.sock: socket.socket | None = None

    def post(self, path: str, body: bytes, headers: str = "") -> tuple[int, bytes]:
        return self.request("POST", path, body, headers)

    def request(
        self, method: str, path: str, body: bytes = b"", headers: str = ""
    ) -> tuple[int, bytes]:
        if self.sock is None:
            self.sock = self._open()
        self.sock.sendall(_request_head(method, path, self.host, len(body), headers) + body)
        data = b""
        while (end := data.find(b"\r\n\r\n")) < 0:
            data += self._recv()
        status, length = _parse_head(data[:end])
        body_start = end + 4
        while len(data) - body_start < length:
            data += self._recv()
        return status, data[body_start : body_start + length]

    def _open(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=self.TIMEOUT_S)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # The bound in the kernel, on plain blocking calls: Python's own socket timeout would
        # poll() before every recv (~0.01 ms a request here).
        sock.settimeout(None)
        bound = struct.pack("ll", self.TIMEOUT_S, 0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, bound)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, bound)
        return sock

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection mid-response")
        return chunk

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def _degraded(body: bytes) -> bool:
    return b'"degraded":[]' not in body


async def _one(conn: Connection, body: bytes, scenario: Scenario, started: float) -> None:
    try:
        status, payload = await conn.post("/recommend", body)
    except (OSError, asyncio.IncompleteReadError, ValueError):
        scenario.errors += 1
        conn.close()
        return
    if _record(scenario, started, status):
        _inspect(scenario, payload)


def _record(scenario: Scenario, started: float, status: int) -> bool:
    """The request's latency, and whether it was answered (200)."""
    scenario.latencies_ms.append((time.perf_counter() - started) * 1000.0)
    if status != 200:
        scenario.errors += 1
        return False
    return True


def _inspect(scenario: Scenario, payload: bytes) -> None:
    """The degraded reasons of a 200 answer."""
    if _degraded(payload):
        scenario.degraded += 1
        for reason in json.loads(payload)["degraded"]:
            scenario.reasons[reason] = scenario.reasons.get(reason, 0) + 1


def one_client(
    host: str, port: int, requests: list[tuple[str, str, bytes]], name: str, duration: float
) -> Scenario:
    """One client alone, on a blocking socket; `requests` are (method, path, body).

    The answers are read after the run: parsing one between requests would leave the server
    idle that much longer each time, which on a VM slows its next answer."""
    scenario = Scenario(name)
    answers: list[bytes] = []
    conn = BlockingConnection(host, port)
    rng = random.Random(0)
    t0 = time.perf_counter()
    end = t0 + duration
    while time.perf_counter() < end:
        method, path, body = rng.choice(requests)
        started = time.perf_counter()
        try:
            status, payload = conn.request(method, path, body)
        except (OSError, ValueError):
            scenario.errors += 1
            conn.close()
            continue
        if _record(scenario, started, status):
            answers.append(payload)
    conn.close()
    scenario.elapsed_s = time.perf_counter() - t0
    if name.startswith("closed"):
        for payload in answers:
            _inspect(scenario, payload)
    return scenario


def explain_ab(
    host: str, port: int, bodies: list[bytes], duration: float
) -> tuple[Scenario, Scenario]:
    """One client alternating each request without and with `explain` (A/B in one run, so
    both halves see the same machine): what explanations add to a request."""
    plain, explained = Scenario("explain off c=1"), Scenario("explain on c=1")
    pairs = [(body, body[:-1] + b', "explain": true}') for body in bodies]
    conn = BlockingConnection(host, port)
    rng = random.Random(1)
    t0 = time.perf_counter()
    end = t0 + duration
    while time.perf_counter() < end:
        for scenario, body in zip((plain, explained), rng.choice(pairs), strict=True):
            started = time.perf_counter()
            try:
                status, _ = conn.request("POST", "/recommend", body)
            except (OSError, ValueError):
                scenario.errors += 1
                conn.close()
                continue
            _record(scenario, started, status)
    conn.close()
    plain.elapsed_s = explained.elapsed_s = time.perf_counter() - t0
    return plain, explained


async def closed_loop(host: str, port: int, bodies: list[bytes], clients: int, duration: float):
    scenario = Scenario(f"closed c={clients}")
    end = time.perf_counter() + duration

    async def client(seed: int) -> None:
        conn = Connection(host, port)
        rng = random.Random(seed)
        while time.perf_counter() < end:
            await _one(conn, rng.choice(bodies), scenario, time.perf_counter())
        conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    scenario.elapsed_s = time.perf_counter() - t0
    return scenario


async def open_loop(host: str, port: int, bodies: list[bytes], rate: float, duration: float):
    scenario = Scenario(f"open {rate:g} req/s")
    idle: list[Connection] = []
    rng = random.Random(0)
    tasks: set[asyncio.Task] = set()

    async def send(scheduled: float, body: bytes) -> None:
        conn = idle.pop() if idle else Connection(host, port)
        await _one(conn, body, scenario, scheduled)
        if conn.writer is not None:
            idle.append(conn)

    t0 = time.perf_counter()
    n = int(rate * duration)
    for i in range(n):
        scheduled = t0 + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(send(scheduled, rng.choice(bodies)))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    scenario.elapsed_s = time.perf_counter() - t0
    for conn in idle:
        conn.close()
    return scenario


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(url: str, process: subprocess.Popen | None, timeout_s: float = 120.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} during start-up")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready within {timeout_s} s")


def _start_server(bundle: Path, data_dir: Path) -> tuple[str, subprocess.Popen]:
    """The server as `intentrec serve` runs it, with one worker."""
    port = _free_port()
    env = os.environ | {"INTENTREC_BUNDLE_DIR": str(bundle), "INTENTREC_DATA_DIR": str(data_dir)}
    env.pop("INTENTREC_REDIS_URL", None)
    process = subprocess.Popen(
        [
            sys.executable, "-m", "uvicorn", "serving.app:create_app", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
            "--log-level", "warning",
        ],
        env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process)
    except BaseException:
        process.terminate()
        raise
    return url, process


def _workload(bundle: Path, budget_ms: float) -> tuple[str, list[list[str]], list[bytes]]:
    """Real sequences from the bundle's samples: its version, user histories, request bodies."""
    from models_export.bundle import BundleFiles, load_bundle

    loaded = load_bundle(bundle)
    samples = np.load(BundleFiles(loaded.root).samples)["item_seq"]
    external_ids = loaded.catalog.external_ids
    histories = [[external_ids[i] for i in row if i > 0] for row in samples]
    histories = [h for h in histories if h][:N_USERS]
    bodies = []
    for n, history in enumerate(histories):
        request = {"k": K, "refine": "off", "budget_ms": budget_ms}
        # Half the requests read the stored history (Redis), half send it in the request.
        request |= {"user_id": f"bench-{n}"} if n % 2 else {"history": history}
        bodies.append(json.dumps(request).encode())
    return loaded.version, histories, bodies


def _seed_users(url: str, histories: list[list[str]]) -> None:
    import httpx

    headers = {}
    if os.environ.get("INTENTREC_API_KEY"):
        headers["X-API-Key"] = os.environ["INTENTREC_API_KEY"]
    events = [
        {"user_id": f"bench-{n}", "item_id": item, "event_id": f"bench-{n}-{j}"}
        for n, history in enumerate(histories)
        if n % 2
        for j, item in enumerate(history)
    ]
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        for start in range(0, len(events), 250):
            for attempt in range(5):  # 503 asks for a retry; event ids make it safe
                response = client.post("/events", json={"events": events[start : start + 250]})
                if response.status_code != 503:
                    break
                time.sleep(0.5 * (attempt + 1))
            response.raise_for_status()


def _served_device(url: str) -> dict | None:
    """What the server reports it runs on (/readyz), as loaded, not as configured."""
    import httpx

    return httpx.get(f"{url}/readyz", timeout=10.0).json().get("device")


def _history_cache(url: str) -> dict[str, int]:
    """The server's history cache outcomes (hit, miss, ...) from its /metrics: reads of stored
    histories that did not reach Redis are part of what the latencies show."""
    import httpx

    prefix = 'intentrec_history_cache_total{outcome="'
    counts: dict[str, int] = {}
    for line in httpx.get(f"{url}/metrics", timeout=30).text.splitlines():
        if line.startswith(prefix):
            outcome, value = line[len(prefix) :].split('"} ')
            counts[outcome] = int(float(value))
    return counts


def _load(url: str, bodies: list[bytes], options: BenchOptions, log) -> list[Scenario]:
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    run(closed_loop(host, port, bodies, 4, 1.0))  # warm-up, not reported
    recommend = [("POST", "/recommend", body) for body in bodies]
    log(f"GET /healthz, 1 client, {options.duration_s:g} s")
    scenarios = [one_client(host, port, [("GET", "/healthz", b"")], HEALTHZ, options.duration_s)]
    for clients in options.concurrency:
        log(f"closed loop, {clients} client(s), {options.duration_s:g} s")
        if clients == 1:
            scenarios.append(one_client(host, port, recommend, "closed c=1", options.duration_s))
        else:
            scenarios.append(run(closed_loop(host, port, bodies, clients, options.duration_s)))
    for rate in options.rates:
        log(f"open loop, {rate:g} req/s, {options.duration_s:g} s")
        scenarios.append(run(open_loop(host, port, bodies, rate, options.duration_s)))
    log(f"explain off / on alternated, 1 client, {options.duration_s:g} s")
    scenarios.extend(explain_ab(host, port, bodies, options.duration_s))
    return scenarios


def run_bench(options: BenchOptions) -> dict:
    from rich.console import Console

    from serving.settings import Settings

    console = Console(stderr=True, quiet=not options.progress)
    bundle = options.bundle or Settings().bundle_dir
    version, histories, bodies = _workload(bundle, options.budget_ms)
    console.log(f"bundle {version}: {len(bodies)} distinct requests")

    process = None
    with tempfile.TemporaryDirectory(prefix="intentrec-bench-") as data_dir:
        if options.url is None:
            console.log("starting a server on 127.0.0.1")
            url, process = _start_server(Path(bundle), Path(data_dir))
        else:
            url = options.url.rstrip("/")
            _wait_ready(url, None, 10.0)
        try:
            _seed_users(url, histories)
            scenarios = _load(url, bodies, options, console.log)
            history_cache = _history_cache(url)
            device = _served_device(url)
        finally:
            if process is not None:
                process.terminate()
                process.wait(30)

    rows = [s.summary() for s in scenarios]
    healthz = rows[0]
    recommend = rows[1:]
    closed_1 = next((r for r in recommend if r["scenario"] == "closed c=1"), None)
    at_200 = next((r for r in recommend if r["scenario"] == "open 200 req/s"), None)
    closed = [r for r in recommend if r["scenario"].startswith("closed")]
    explain = {r["scenario"]: r["p50_ms"] for r in recommend if r["scenario"].startswith("explain")}
    figures = {
        "p50_ms_c1": closed_1["p50_ms"] if closed_1 else None,
        "p99_ms_c1": closed_1["p99_ms"] if closed_1 else None,
        "p99_ms_at_200rps": at_200["p99_ms"] if at_200 else None,
        "peak_rps": max((r["throughput_rps"] for r in closed), default=None),
        "errors": sum(r["errors"] for r in rows),
        "degraded": sum(r["degraded"] for r in recommend),
        "healthz_p50_ms_c1": healthz["p50_ms"],
        "explain_p50_ms_added": round(explain["explain on c=1"] - explain["explain off c=1"], 3),
    }
    return {
        "bench": "serve",
        "url": url if options.url else "started on 127.0.0.1",
        "bundle": version,
        "cpu_count": os.cpu_count(),
        "duration_s_per_scenario": options.duration_s,
        "budget_ms": options.budget_ms,
        "history_cache": history_cache,
        "device": device,
        "scenarios": rows,
        "figures": figures,
        "targets": {
            name: {
                "target": target,
                "value": figures[name],
                "met": figures[name] is not None
                and (figures[name] >= target if name == "peak_rps" else figures[name] <= target),
            }
            for name, target in TARGETS.items()
        },
    }


def print_report(report: dict, json_out: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    if json_out:
        print(json.dumps(report))
        return
    console = Console()
    device = report["device"] or {}
    table = Table(
        title=f"bench serve: bundle {report['bundle']}, on {device.get('name', 'unknown')} "
        f"({', '.join(device.get('providers', []))}; {device.get('index_type', '')})"
    )
    for column in ("scenario", "requests", "throughput_rps", "p50_ms", "p95_ms", "p99_ms"):
        table.add_column(column, justify="right")
    table.add_column("errors", justify="right")
    table.add_column("degraded", justify="right")
    for row in report["scenarios"]:
        table.add_row(*(str(v) for k, v in row.items() if k != "degraded_reasons"))
    console.print(table)
    for row in report["scenarios"]:
        if row["degraded_reasons"]:
            console.print(f"degraded in {row['scenario']}: {row['degraded_reasons']}")
    console.print(f"history cache {report['history_cache'] or 'off'}")
    targets = Table(title="targets")
    for column in ("figure", "target", "value", "met"):
        targets.add_column(column)
    for name, row in report["targets"].items():
        targets.add_row(name, str(row["target"]), str(row["value"]), "yes" if row["met"] else "NO")
    console.print(targets)
