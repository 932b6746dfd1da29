"""The serving API end to end: real bundle, real redis-server, real HTTP."""

from __future__ import annotations

import gc
import uuid
from pathlib import Path

import jsonschema_rs
import pytest
import redis

from serving.schemas import RecommendResponse
from tests.e2e.conftest import switch_to


def _user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


def test_health_readiness_and_metrics(server) -> None:
    with server.client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["ready"] is True
        assert ready.json()["history_store"] == "ok"
        # the CPU build of onnxruntime and faiss-cpu: what was loaded, not what was asked for
        assert ready.json()["device"] == {
            "name": "cpu",
            "encoder": "cpu",
            "index": "cpu",
            "providers": ["CPUExecutionProvider"],
            "index_type": "IndexIDMap(IndexFlatIP)",
        }
        client.post("/recommend", json={"history": ["50"], "k": 3})
        client.post("/recommend", json={"k": 0})
        metrics = client.get("/metrics").text
    assert 'intentrec_requests_total{endpoint="recommend",outcome="client_error"}' in metrics
    assert 'intentrec_stage_latency_seconds_bucket{le="0.001",stage="encode"}' in metrics
    assert "intentrec_bundle_info{version=" in metrics
    assert 'intentrec_device_info{encoder="cpu",index="cpu"} 1.0' in metrics
    assert "intentrec_encoder_batch_size_count" in metrics


def test_recommend_from_request_history_reports_unknown_ids(server, catalog) -> None:
    history = [catalog.external_ids[i] for i in (1, 2, 3)] + ["no-such-item"]
    with server.client() as client:
        body = client.post("/recommend", json={"history": history, "k": 7}).json()
    ids = [item["item_id"] for item in body["items"]]
    assert len(ids) == 7 == len(set(ids))
    assert [item["rank"] for item in body["items"]] == list(range(1, 8))
    assert not set(ids) & set(history)  # exclude_seen defaults to true
    scores = [item["score"] for item in body["items"]]
    assert scores == sorted(scores, reverse=True)
    assert body["unknown_history"] == ["no-such-item"]
    assert body["degraded"] == []
    assert body["refined"] is False
    assert {"encode", "retrieve", "total"} <= set(body["timings_ms"])
    titles = {item["item_id"]: item["title"] for item in body["items"]}
    assert all(titles[i] == catalog.titles[catalog.internal_ids()[i]] for i in ids)


def test_cold_start_gets_popularity(server, catalog) -> None:
    with server.client() as client:
        body = client.post("/recommend", json={"user_id": _user(), "k": 5}).json()
    popular = sorted(range(1, len(catalog)), key=lambda i: -catalog.popularity[i])[:5]
    assert [item["item_id"] for item in body["items"]] == [catalog.external_ids[i] for i in popular]
    assert body["degraded"] == ["cold_start"]


def test_stored_history_is_used_and_seen_items_are_excluded(server, catalog) -> None:
    user = _user()
    seen = [catalog.external_ids[i] for i in range(1, 31)]
    with server.client() as client:
        posted = client.post(
            "/events", json={"events": [{"user_id": user, "item_id": i} for i in seen]}
        )
        assert posted.json() == {"accepted": 30, "duplicates": 0, "unknown_items": []}
        stored = client.get(f"/users/{user}/history").json()
        assert [item["item_id"] for item in stored["items"]] == seen
        body = client.post("/recommend", json={"user_id": user, "k": 100}).json()
        assert body["degraded"] == []
        assert not {item["item_id"] for item in body["items"]} & set(seen)
        kept = client.post(
            "/recommend", json={"user_id": user, "k": 100, "exclude_seen": False}
        ).json()
    # With seen items allowed the same user vector ranks some of them back in.
    assert {item["item_id"] for item in kept["items"]} & set(seen)


def test_exclude_list_is_honoured(server, catalog) -> None:
    history = [catalog.external_ids[i] for i in (10, 11)]
    with server.client() as client:
        first = client.post("/recommend", json={"history": history, "k": 5}).json()
        excluded = [item["item_id"] for item in first["items"][:3]]
        second = client.post(
            "/recommend", json={"history": history, "k": 5, "exclude": excluded}
        ).json()
    assert not {item["item_id"] for item in second["items"]} & set(excluded)
    assert len(second["items"]) == 5


def test_events_with_an_event_id_are_idempotent(server, catalog) -> None:
    user = _user()
    event = {"user_id": user, "item_id": catalog.external_ids[5], "event_id": "click-1"}
    with server.client() as client:
        assert client.post("/events", json=event).json()["accepted"] == 1
        again = client.post("/events", json={"events": [event, event]}).json()
        assert again == {"accepted": 0, "duplicates": 2, "unknown_items": []}
        unknown = client.post("/events", json={"user_id": user, "item_id": "new-item"}).json()
        assert unknown["unknown_items"] == ["new-item"]
        items = client.get(f"/users/{user}/history").json()["items"]
    assert [item["item_id"] for item in items] == [catalog.external_ids[5], "new-item"]
    assert items[1]["title"] is None


def test_items_endpoint(server, catalog) -> None:
    external = catalog.external_ids[1]
    with server.client() as client:
        item = client.get(f"/items/{external}").json()
        missing = client.get("/items/does-not-exist")
    assert item == {
        "item_id": external,
        "title": catalog.titles[1],
        "text": catalog.texts[1],
        "popularity": int(catalog.popularity[1]),
        "from_text": False,
    }
    assert missing.status_code == 404
    assert missing.json()["error"]["field"] == "item_id"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"k": 0}, "k"),
        ({"k": 101}, "k"),
        ({"k": "ten"}, "k"),
        ({"budget_ms": 0}, "budget_ms"),
        ({"budget_ms": 10_001}, "budget_ms"),
        ({"history": "50"}, "history"),
        ({"refine": "maybe"}, "refine"),
        ({"colour": "red"}, "colour"),
        ({"history": ["1"] * 501}, "history"),
    ],
)
def test_bad_recommend_input_is_a_422_naming_the_field(server, body, field) -> None:
    with server.client() as client:
        response = client.post("/recommend", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == field
    assert field in response.json()["error"]["message"]


def test_answers_match_the_documented_response_exactly(server, catalog) -> None:
    history = [catalog.external_ids[i] for i in (1, 2, 3)] + ["no-such-item"]
    requests = [
        {"history": history, "k": 4},  # full pipeline, one unknown id
        {"user_id": _user(), "k": 3},  # cold start: popularity
        {"history": history, "k": 2, "refine": "on"},  # no LLM here: degraded
    ]
    with server.client() as client:
        for body in requests:
            response = client.post("/recommend", json=body)
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/json"
            answer = RecommendResponse.model_validate_json(response.content)  # no extra field
            assert set(response.json()) == set(RecommendResponse.model_fields)  # none missing
            assert len(answer.items) == body["k"]


def test_answers_validate_against_the_published_openapi_schema(server, catalog) -> None:
    history = [catalog.external_ids[i] for i in (1, 2, 3)] + ["no-such-item"]
    with server.client() as client:
        document = client.get("/openapi.json").json()
        schema = {
            "$ref": "#/components/schemas/RecommendResponse",
            "components": document["components"],
        }
        validator = jsonschema_rs.Draft202012Validator(schema)
        answers = [
            client.post("/recommend", json=body).json()
            for body in (
                {"history": history, "k": 4},
                {"user_id": _user(), "k": 3},
                {"history": history, "k": 2, "refine": "on"},
            )
        ]
    for answer in answers:
        validator.validate(answer)
    # The schema holds answers to it: an unknown field or reason would not pass.
    assert not validator.is_valid(answers[0] | {"extra": 1})
    assert not validator.is_valid(answers[1] | {"degraded": ["no_such_reason"]})


def _counter(metrics: str, series: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines() if line.startswith(series)
    )


def test_recommend_refuses_what_is_not_a_json_post(server) -> None:
    series = 'intentrec_requests_total{endpoint="recommend",outcome="client_error"}'
    with server.client() as client:
        before = _counter(client.get("/metrics").text, series)
        text = client.post(
            "/recommend", content=b'{"k": 3}', headers={"content-type": "text/plain"}
        )
        broken = client.post(
            "/recommend", content=b'{"k": ', headers={"content-type": "application/json"}
        )
        wrong_method = client.get("/recommend")
        metrics = client.get("/metrics").text
    assert text.status_code == 422
    assert text.json()["error"]["field"] == "body"
    assert "text/plain" in text.json()["error"]["message"]
    assert broken.status_code == 422
    assert broken.json()["detail"][0]["type"] == "json_invalid"
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"
    # Counted under the route, like the errors of FastAPI's own routes.
    assert _counter(metrics, series) == before + 3


def test_the_openapi_document_describes_recommend(server) -> None:
    with server.client() as client:
        schema = client.get("/openapi.json").json()
    operation = schema["paths"]["/recommend"]["post"]
    assert operation["operationId"] == "recommend_recommend_post"
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/RecommendRequest"}
    assert {"200", "413", "422"} <= set(operation["responses"])
    assert schema["components"]["schemas"]["RecommendRequest"]["examples"]


def test_oversized_bodies_are_refused_with_413(server) -> None:
    huge = {"history": ["x" * 200] * 2000}
    with server.client() as client:
        declared = client.post("/recommend", json=huge)

        def chunks():  # no Content-Length: the limit must hold for streamed bodies too
            yield b'{"history": ['
            for _ in range(3000):
                yield b'"' + b"x" * 100 + b'",'
            yield b'"1"]}'

        streamed = client.post(
            "/recommend", content=chunks(), headers={"content-type": "application/json"}
        )
    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert "INTENTREC_MAX_BODY_BYTES" in streamed.json()["error"]["message"]


def test_a_tiny_budget_still_answers_k_items(server, catalog) -> None:
    history = [catalog.external_ids[i] for i in (1, 2, 3)]
    with server.client() as client:
        body = client.post("/recommend", json={"history": history, "k": 10, "budget_ms": 1})
    assert body.status_code == 200
    assert len(body.json()["items"]) == 10


def test_refine_on_without_an_llm_is_reported(server, catalog) -> None:
    with server.client() as client:
        body = client.post(
            "/recommend", json={"history": [catalog.external_ids[1]], "refine": "on"}
        ).json()
    assert "refine_unavailable" in body["degraded"]
    assert body["refined"] is False


def test_api_key_guards_events_and_admin_only(start_server, catalog) -> None:
    event = {"user_id": "u", "item_id": catalog.external_ids[1]}
    with start_server(api_key="s3cret") as live, live.client() as client:
        assert client.post("/events", json=event).status_code == 401
        assert client.post("/events", json=event, headers={"X-API-Key": "wrong"}).status_code == 401
        assert client.post("/admin/reload").status_code == 401
        ok = client.post("/events", json=event, headers={"X-API-Key": "s3cret"})
        assert ok.status_code == 200
        reload = client.post("/admin/reload", headers={"X-API-Key": "s3cret"})
        assert reload.status_code == 200
        assert client.post("/recommend", json={"user_id": "u"}).status_code == 200


def _collector_tracks(obj: object) -> bool:
    return any(tracked is obj for tracked in gc.get_objects())


def test_the_served_model_is_frozen_out_of_the_cyclic_collector(
    start_server, serving_bundles
) -> None:
    """A full collection walks every tracked object with the event loop stopped; the model and
    what start-up built must not be among them (gc.freeze), before and after a reload."""
    with start_server() as server:
        holder = server.app.state.holder
        first = holder.current
        assert not _collector_tracks(first)
        switch_to(serving_bundles, "b")
        try:
            with server.client() as client:
                assert client.post("/admin/reload").status_code == 200
            assert holder.current is not first
            assert not _collector_tracks(holder.current)
        finally:
            switch_to(serving_bundles, "a")


def test_device_cuda_without_the_cuda_build_stops_start_up_naming_it(
    start_server, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(RuntimeError, match="start-up"), start_server(device="cuda"):
        pass
    # uvicorn logs the lifespan's error on stderr
    assert (
        "INTENTREC_DEVICE=cuda, but this onnxruntime has no CUDA provider" in capfd.readouterr().err
    )
    # the embedded redis-server started before the bundle failed is stopped, not orphaned
    socket = tmp_path / "data" / "redis" / "redis.sock"
    client = redis.Redis(unix_socket_path=str(socket), socket_timeout=1)
    with pytest.raises(redis.ConnectionError):
        client.ping()
    client.close()
