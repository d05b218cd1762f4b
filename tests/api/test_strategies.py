"""Strategies over HTTP: registered strategies with parameter specs; parameter versions list, create,
activate, diff."""

from __future__ import annotations


def test_strategies_and_parameter_versions(api):
    with api.client("developer") as dev, api.client("viewer") as viewer:
        listed = {s["name"]: s for s in viewer.get("/api/v1/strategies").json()}
        sma = listed["sma_cross"]
        assert sma["params"]["fast"]["type"] == "int" and sma["params"]["fast"]["default"] == 10
        assert sma["active_version"] is None
        base = "/api/v1/strategies/sma_cross/versions"
        v1 = dev.post(base, json={"params": {"fast": 5, "slow": 20}, "note": "first"})
        assert v1.status_code == 201 and v1.json()["version"] == 1 and v1.json()["active"]
        v2 = dev.post(base, json={"params": {"fast": 8}})
        assert v2.json()["version"] == 2 and not v2.json()["active"]
        assert v2.json()["params"] == {"fast": 8, "slow": 20}  # validated: defaults filled in
        bad = dev.post(base, json={"params": {"fast": 50, "slow": 20}})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "INVALID_INPUT"
        assert dev.post("/api/v1/strategies/nope/versions", json={"params": {}}).status_code == 404
        assert [v["version"] for v in viewer.get(base).json()] == [1, 2]
        activated = dev.post(f"{base}/2:activate")
        assert activated.status_code == 200 and activated.json()["active"]
        assert viewer.post(f"{base}/1:activate").status_code == 403
        assert dev.post(f"{base}/9:activate").status_code == 404
        listed = {s["name"]: s for s in viewer.get("/api/v1/strategies").json()}
        assert listed["sma_cross"]["active_version"] == 2
        diff = viewer.get("/api/v1/strategies/sma_cross/diff", params={"from": 1, "to": 2}).json()
        assert diff == {"added": {}, "removed": {}, "changed": {"fast": [5, 8]}}
