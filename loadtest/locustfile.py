"""A realistic traffic mix against the intentrec API, with an SLO gate on exit.

Each simulated client owns a few end users whose histories it seeds with events at start and
grows with the events it sends (mostly clicks on what it was recommended). Mix (weights from
`INTENTREC_LOADTEST_WEIGHT_*`): /recommend for those known users, /recommend for cold users, and
/events. Every answer is checked (status, k items, ranks, no duplicates, nothing seen or
excluded) and a broken one counts as a failure. When Locust quits, the run's figures are checked
against `INTENTREC_SLO_*` and the process exits 1 when an objective is missed.

    INTENTREC_LOADTEST_RATE=50 locust -f loadtest/locustfile.py --headless \
        -H http://127.0.0.1:8000 -u 10 -r 10 -t 60s \
        --csv reports/run --csv-full-history --html reports/run.html

`intentrec loadtest` wraps exactly this and adds the latency plot.
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

from gevent.lock import Semaphore
from locust import FastHttpUser, events, task
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from loadtest.checks import recommend_problem, total_ms
from loadtest.settings import LoadtestSettings
from loadtest.slo import ResponseCounters, SloSettings, check_slo, figures_from_stats

# The locustfile is loaded once per Locust process; the environment is fixed by then.
SETTINGS = LoadtestSettings()
SLO = SloSettings()
COUNTERS = ResponseCounters()
RUN_ID = uuid.uuid4().hex[:8]
COUNTER_KEY = "intentrec_counters"

logger = logging.getLogger("intentrec.loadtest")
_client_ids = itertools.count()
_pool: list[str] = []
_pool_lock = Semaphore()
_POOL_CAP = 2_000


@dataclass(slots=True)
class EndUser:
    user_id: str
    history: deque[str] = field(default_factory=lambda: deque(maxlen=SETTINGS.seen_window))
    last_recommended: list[str] = field(default_factory=list)


def _headers() -> dict[str, str]:
    if not SETTINGS.api_key:
        return {}
    return {"X-API-Key": SETTINGS.api_key}


def _grow_pool(item_ids: list[str]) -> None:
    if len(_pool) < _POOL_CAP:
        known = set(_pool)
        _pool.extend(i for i in item_ids if i not in known)


class RecommendClient(FastHttpUser):
    """One app instance: its end users, their histories, and what it was last recommended."""

    def wait_time(self) -> float:
        """Poisson arrivals at this client's share of the target rate, paced from the scheduled
        arrival rather than from the end of the last response, so slow answers do not lower the
        offered rate (as long as the client is not behind by more than a second: then the
        missed arrivals are dropped instead of sent in a burst)."""
        if SETTINGS.rate <= 0:
            return 0.0
        clients = getattr(self.environment.parsed_options, "num_users", None) or 1
        now = time.monotonic()
        if self._next_at < now - 1.0:
            self._next_at = now
        self._next_at += random.expovariate(SETTINGS.rate / clients)
        return max(0.0, self._next_at - now)

    def on_start(self) -> None:
        self._next_at = time.monotonic()
        self._ensure_pool()
        index = next(_client_ids)
        self.end_users = [
            EndUser(f"lt-{RUN_ID}-{index}-{j}") for j in range(SETTINGS.users_per_client)
        ]
        for user in self.end_users:
            self._seed(user)

    def _ensure_pool(self) -> None:
        with _pool_lock:
            if _pool:
                return
            body = {"k": SETTINGS.pool_size, "refine": "off", "budget_ms": 5_000}
            with self.rest("POST", "/recommend", json=body, name="/recommend (pool)") as resp:
                items = resp.js.get("items") if isinstance(resp.js, dict) else None
                if resp.status_code != 200 or not items:
                    resp.failure(f"status {resp.status_code}: {(resp.text or '')[:200]}")
                else:
                    # A small catalog may hold fewer than pool_size items: take what comes.
                    _grow_pool([str(item["item_id"]) for item in items])
            if not _pool:
                logger.error("no popular items from /recommend: the catalog pool is empty")
                self.environment.process_exit_code = 2
                if self.environment.runner is not None:
                    self.environment.runner.quit()

    def _seed(self, user: EndUser) -> None:
        picks = random.sample(_pool, min(SETTINGS.seed_events, len(_pool)))
        batch = [
            {"user_id": user.user_id, "item_id": item_id, "event_id": uuid.uuid4().hex}
            for item_id in picks
        ]
        with self.rest(
            "POST", "/events", json={"events": batch}, headers=_headers(), name="/events (seed)"
        ) as resp:
            if resp.status_code // 100 != 2:
                resp.failure(f"status {resp.status_code}: {(resp.text or '')[:200]}")
            else:
                user.history.extend(picks)

    def _recommend(
        self, body: dict[str, Any], *, name: str, seen: set[str], excluded: list[str]
    ) -> list[str] | None:
        with self.rest("POST", "/recommend", json=body, name=name) as resp:
            if resp.status_code != 200:
                resp.failure(f"status {resp.status_code}: {(resp.text or '')[:200]}")
                return None
            problem = recommend_problem(resp.js, k=SETTINGS.k, seen=seen, excluded=excluded)
            if problem:
                resp.failure(problem)
                return None
            COUNTERS.record(
                degraded=resp.js["degraded"],
                refined=bool(resp.js["refined"]),
                total_ms=total_ms(resp.js),
                budget_ms=SETTINGS.budget_ms,
                slo=SLO,
            )
            ids = [str(item["item_id"]) for item in resp.js["items"]]
            _grow_pool(ids)
            return ids

    def _request(self, **fields: Any) -> dict[str, Any]:
        return {
            "k": SETTINGS.k,
            "budget_ms": SETTINGS.budget_ms,
            "refine": SETTINGS.refine,
            **fields,
        }

    @task(SETTINGS.weight_known)
    def recommend_known(self) -> None:
        user = random.choice(self.end_users)
        excluded: list[str] = []
        if user.last_recommended and random.random() < SETTINGS.exclude_share:
            excluded = [random.choice(user.last_recommended)]
        body = self._request(user_id=user.user_id, exclude_seen=True, exclude=excluded)
        ids = self._recommend(
            body, name="/recommend (known)", seen=set(user.history), excluded=excluded
        )
        if ids is not None:
            user.last_recommended = ids

    @task(SETTINGS.weight_cold)
    def recommend_cold(self) -> None:
        # Half of the cold traffic is a new user id, half anonymous (no user id at all).
        fields = (
            {"user_id": f"cold-{RUN_ID}-{uuid.uuid4().hex[:12]}"} if random.random() < 0.5 else {}
        )
        self._recommend(self._request(**fields), name="/recommend (cold)", seen=set(), excluded=[])

    @task(SETTINGS.weight_events)
    def send_event(self) -> None:
        user = random.choice(self.end_users)
        # Mostly a click on something just recommended, sometimes an item found elsewhere.
        if user.last_recommended and random.random() < 0.7:
            item_id = random.choice(user.last_recommended)
        else:
            item_id = random.choice(_pool)
        body = {
            "user_id": user.user_id,
            "item_id": item_id,
            "timestamp": time.time(),
            "event_id": uuid.uuid4().hex,
        }
        with self.rest("POST", "/events", json=body, headers=_headers(), name="/events") as resp:
            if resp.status_code // 100 != 2:
                resp.failure(f"status {resp.status_code}: {(resp.text or '')[:200]}")
            else:
                user.history.append(item_id)


@events.report_to_master.add_listener
def _send_counters(client_id: str, data: dict[str, Any], **_: Any) -> None:
    data[COUNTER_KEY] = COUNTERS.to_dict()
    COUNTERS.reset()


@events.worker_report.add_listener
def _receive_counters(client_id: str, data: dict[str, Any], **_: Any) -> None:
    if COUNTER_KEY in data:
        COUNTERS.merge(data[COUNTER_KEY])


@events.quitting.add_listener
def _slo_gate(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return
    figures = figures_from_stats(environment.stats.total, COUNTERS)
    result = check_slo(figures, SLO)
    summary = {
        "run_id": RUN_ID,
        "figures": {
            **asdict(figures),
            "error_rate": figures.error_rate,
            "degraded_rate": figures.degraded_rate,
            "over_budget_rate": figures.over_budget_rate,
        },
        "slo": result.to_dict(),
        "settings": SETTINGS.model_dump(mode="json", exclude={"api_key", "summary_file"}),
        "distributed": isinstance(environment.runner, MasterRunner),
        "finished_at": time.time(),
    }
    if SETTINGS.summary_file is not None:
        SETTINGS.summary_file.parent.mkdir(parents=True, exist_ok=True)
        SETTINGS.summary_file.write_text(json.dumps(summary, indent=2))
    for objective in result.objectives:
        logger.info(
            "SLO %s: %.4g %s %.4g -> %s",
            objective.name,
            objective.measured,
            objective.rule,
            objective.threshold,
            "ok" if objective.passed else "MISSED",
        )
    if environment.process_exit_code is not None:
        return  # an earlier fatal problem (no catalog pool) keeps its own code
    if not result.passed:
        environment.process_exit_code = 1
    elif environment.runner is not None and not environment.runner.exceptions:
        # Objectives met: a few failed requests within the error budget do not fail the run.
        environment.process_exit_code = 0
