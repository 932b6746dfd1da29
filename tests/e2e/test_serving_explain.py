"""`explain: true` on a real server, SASRec and DisenSeq (K = 2) bundles: every item says which
intent scored it and which of the user's history items weigh most in that intent; answers
without `explain` are unchanged; a bundle exported before explanations degrades by name."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema_rs
import pytest

from models_export.bundle import load_bundle, resolve_bundle
from serving.settings import Settings
from tests.e2e.conftest import TEST_BUDGET_MS, TEST_REDIS_TIMEOUT_MS, LiveServer


def _serve(bundle: Path, data_dir: Path) -> LiveServer:
    server = LiveServer(
        Settings(
            bundle_dir=bundle,
            data_dir=data_dir,
            redis_timeout_ms=TEST_REDIS_TIMEOUT_MS,
            default_budget_ms=TEST_BUDGET_MS,
        )
    )
    server.start()
    return server


@pytest.fixture(scope="module", params=["sasrec", "disen"])
def explained(request, tmp_path_factory):
    name = "serving_bundles" if request.param == "sasrec" else "serving_disen_bundle"
    bundle = resolve_bundle(request.getfixturevalue(name))
    server = _serve(bundle, tmp_path_factory.mktemp("data"))
    yield server, load_bundle(bundle)
    server.stop()


def test_every_item_is_explained_by_its_intent_and_history(explained) -> None:
    server, bundle = explained
    catalog, intents = bundle.catalog, bundle.manifest.model.intents
    history = [catalog.external_ids[i] for i in (10, 20, 30, 40, 50, 60, 70, 80)]
    with server.client() as client:
        answer = client.post("/recommend", json={"history": history, "k": 10, "explain": True})
        plain = client.post("/recommend", json={"history": history, "k": 10}).json()
        document = client.get("/openapi.json").json()
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["degraded"] == [] and "explain" in body["timings_ms"]
    titles = dict(zip(catalog.external_ids, catalog.titles, strict=True))
    for item in body["items"]:
        reason = item["explanation"]
        assert reason["source"] == "model" and reason["rank_before_refine"] is None
        assert 0 <= reason["intent"] < intents
        because = [h["item_id"] for h in reason["because"]]
        assert 1 <= len(because) <= 3 and len(set(because)) == len(because)
        assert set(because) <= set(history)
        assert all(h["title"] == titles[h["item_id"]] for h in reason["because"])
    # explaining changes nothing else, and without it the answer has no explanations
    assert [i["item_id"] for i in body["items"]] == [i["item_id"] for i in plain["items"]]
    assert all("explanation" not in item for item in plain["items"])
    schema = {
        "$ref": "#/components/schemas/RecommendResponse",
        "components": document["components"],
    }
    validator = jsonschema_rs.Draft202012Validator(schema)
    validator.validate(body)
    broken = json.loads(json.dumps(body))
    broken["items"][0]["explanation"]["intent"] = "first"
    assert not validator.is_valid(broken)


def test_popularity_answers_say_so(explained) -> None:
    server, _ = explained
    with server.client() as client:
        body = client.post("/recommend", json={"user_id": "nobody", "explain": True}).json()
    assert body["degraded"] == ["cold_start"]
    assert {item["explanation"]["source"] for item in body["items"]} == {"popularity"}
    assert all(item["explanation"]["because"] == [] for item in body["items"])


def test_a_bundle_without_history_weights_degrades_by_name(serving_bundles, tmp_path) -> None:
    old = tmp_path / "bundles" / "old"
    shutil.copytree(resolve_bundle(serving_bundles), old)
    manifest_file = old / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    del manifest["onnx"]["weights_name"]  # as written before explanations existed
    manifest_file.write_text(json.dumps(manifest))
    catalog = load_bundle(old).catalog
    server = _serve(old, tmp_path / "data")
    try:
        with server.client() as client:
            history = [catalog.external_ids[i] for i in (1, 2, 3)]
            body = client.post(
                "/recommend", json={"history": history, "k": 3, "explain": True}
            ).json()
            plain = client.post("/recommend", json={"history": history, "k": 3}).json()
    finally:
        server.stop()
    assert body["degraded"] == ["explain_unavailable"] and plain["degraded"] == []
    assert all(item["explanation"]["intent"] is None for item in body["items"])
