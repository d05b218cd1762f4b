"""Run progress over HTTP: the `backtest_request` job publishes stages on the hot tier's `runs.{id}`
channel, `GET run` shows the last one while the run runs, and `GET /runs/{id}/events` streams them as
Server-Sent Events until the terminal one (Redis), or follows the warm status (embedded hot tier).
The runs are real: a sensor tick and the job executed in process, as the daemon would launch them."""

from __future__ import annotations

import json
import queue
import threading

import dagster as dg
import httpx

from quant_platform.api import progress
from quant_platform.storage.hot import RedisHotStore
from tests.api.test_backtest_runs import backtest_body, launch
from tests.grid.conftest import chdb_path  # noqa: F401 - a copy of the klines

STAGES = ["started", "data_loaded", "simulated", "written", "finished"]


class EventReader(threading.Thread):
    """Reads an SSE stream in a thread: `(event, data)` pairs and heartbeat comments, in order."""

    def __init__(self, client: httpx.Client, path: str, **params) -> None:
        super().__init__(daemon=True)
        self.client, self.path, self.params = client, path, params
        self.items: queue.Queue = queue.Queue()
        self.status: int | None = None
        self.content_type = ""

    def run(self) -> None:
        with self.client.stream("GET", self.path, params=self.params) as r:
            self.status, self.content_type = r.status_code, r.headers.get("content-type", "")
            event = None
            for line in r.iter_lines():
                if line.startswith(":"):
                    self.items.put(("comment", line))
                elif line.startswith("event: "):
                    event = line[len("event: ") :]
                elif line.startswith("data: "):
                    self.items.put((event, json.loads(line[len("data: ") :])))
        self.items.put(("closed", None))

    def next(self, timeout: float = 30.0) -> tuple[str, dict | None]:
        return self.items.get(timeout=timeout)

    def rest(self, timeout: float = 60.0) -> list[tuple[str, dict | None]]:
        out = []
        while (item := self.next(timeout))[0] != "closed":
            out.append(item)
        return out


def submit(c: httpx.Client) -> tuple[int, str]:
    bid = c.post("/api/v1/backtests", json=backtest_body()).json()["backtest_id"]
    (run_id,) = c.post(f"/api/v1/backtests/{bid}/runs", json={"mode": "single"}).json()["run_ids"]
    return bid, run_id


def test_events_follow_a_real_run_from_queued_to_succeeded(api_redis, chdb_path):  # noqa: F811
    api = api_redis
    with api.client("trader") as c, api.client("trader") as streaming:
        bid, run_id = submit(c)
        reader = EventReader(streaming, f"/api/v1/runs/{run_id}/events")
        reader.start()
        assert reader.next() == ("state", {"run_id": run_id, "status": "queued", "progress": 0.0})
        assert reader.status == 200 and reader.content_type.startswith("text/event-stream")

        (result,) = launch(api, chdb_path, dg.DagsterInstance.ephemeral())
        assert result.success
        events = [data for kind, data in reader.rest() if kind == "progress"]
        assert [e["stage"] for e in events] == STAGES
        assert [e["progress"] for e in events] == sorted(e["progress"] for e in events)
        assert events[-1]["status"] == "succeeded" and events[-1]["progress"] == 100
        assert all(e["run_id"] == run_id for e in events)
        reader.join(10)

        done = c.get(f"/api/v1/backtests/{bid}/runs/{run_id}").json()
        assert done["status"] == "succeeded" and done["progress"] == 100
        # a finished run: its state, and the stream ends at once
        replay = EventReader(streaming, f"/api/v1/runs/{run_id}/events")
        replay.start()
        assert replay.rest() == [("state", {"run_id": run_id, "status": "succeeded", "progress": 100.0})]


def test_get_run_shows_the_last_published_stage_and_streams_are_bounded(api_redis):
    api = api_redis
    with api.client("trader") as c:
        bid, run_id = submit(c)
        api.warm.start_run(run_id)
        hot = RedisHotStore(api.server.settings.stores.redis_url)
        try:
            progress.publish(hot, run_id, "simulated")
        finally:
            hot.close()
        run = c.get(f"/api/v1/backtests/{bid}/runs/{run_id}").json()
        assert run["status"] == "running" and run["progress"] == 70 and run["message"].endswith("simulated")

        reader = EventReader(c, f"/api/v1/runs/{run_id}/events", heartbeat=1, timeout=2.5)
        reader.start()
        items = [reader.next(), *reader.rest()]
        assert items[0] == (
            "state",
            {"run_id": run_id, "status": "running", "progress": 70.0, "stage": "simulated"},
        )
        assert ("comment", ": heartbeat") in items
        assert items[-1] == ("timeout", {"run_id": run_id, "after_seconds": 2.5})


def test_cancelling_ends_the_stream_and_others_cannot_follow_it(api_redis):
    api = api_redis
    with api.client("trader") as c, api.client("trader") as streaming, api.client("other") as other:
        bid, run_id = submit(c)
        r = other.get(f"/api/v1/runs/{run_id}/events")
        assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
        r = c.get("/api/v1/runs/no-such-run/events")
        assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
        assert c.get(f"/api/v1/runs/{run_id}/events", params={"timeout": 0}).status_code == 422

        reader = EventReader(streaming, f"/api/v1/runs/{run_id}/events")
        reader.start()
        assert reader.next()[1]["status"] == "queued"
        assert c.post(f"/api/v1/backtests/{bid}/runs/{run_id}:cancel").status_code == 204
        (kind, data), *rest = reader.rest()
        assert (kind, data["status"], data["progress"], rest) == ("progress", "cancelled", 100.0, [])


def test_with_the_embedded_hot_tier_the_stream_follows_the_warm_status(api, chdb_path):  # noqa: F811
    with api.client("trader") as c, api.client("trader") as streaming:
        _, run_id = submit(c)
        reader = EventReader(streaming, f"/api/v1/runs/{run_id}/events")
        reader.start()
        assert reader.next() == ("state", {"run_id": run_id, "status": "queued", "progress": 0.0})
        (result,) = launch(api, chdb_path, dg.DagsterInstance.ephemeral())
        assert result.success
        states = reader.rest()
        assert states[-1] == ("state", {"run_id": run_id, "status": "succeeded", "progress": 100.0})
        assert all(kind in ("state", "comment") for kind, _ in states)
