"""POST /recommend with the real app, a real bundle and the real embedded LLM server."""

from __future__ import annotations

import httpx
import pytest

from serving.refine.server import EmbeddedLLMServer

pytestmark = [pytest.mark.llm, pytest.mark.slow]

HISTORY = ["50", "181", "258", "100", "294", "286", "288", "1", "7", "121"]


def test_recommend_refines_below_the_top_5_and_degrades_under_a_tight_budget(
    start_server, llm_server: EmbeddedLLMServer
) -> None:
    with (
        start_server(llm_base_url=llm_server.base_url, llm_model="smollm2") as server,
        httpx.Client(base_url=server.url, timeout=60.0) as http,
    ):
        body = {"history": HISTORY, "k": 20, "budget_ms": 10_000}
        off = http.post("/recommend", json={**body, "refine": "off"})
        on = http.post("/recommend", json={**body, "refine": "on"})
        assert off.status_code == on.status_code == 200, on.text
        off_ids = [item["item_id"] for item in off.json()["items"]]
        on_ids = [item["item_id"] for item in on.json()["items"]]
        assert on.json()["refined"] and not off.json()["refined"]
        assert on_ids[:5] == off_ids[:5]
        assert sorted(on_ids) == sorted(off_ids)

        # Another history (no prefix cache) with a budget far below the LLM's latency.
        # (Within-budget timing is asserted on the refiner itself in test_refine_llm.py.)
        tight = {"history": HISTORY[::-1][:6], "k": 20, "budget_ms": 80, "refine": "on"}
        late = http.post("/recommend", json=tight)
        assert late.status_code == 200
        assert not late.json()["refined"]
        assert {"refine_timeout", "refine_skipped_budget"} & set(late.json()["degraded"])
        assert late.json()["timings_ms"]["total"] < 1_000
