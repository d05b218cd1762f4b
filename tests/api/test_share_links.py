"""The report artifact and read-only share links over real HTTP: the owner (or an admin) shares a
succeeded run, anyone with the URL reads the report without credentials until the link expires or is
revoked; tampered, expired, revoked and unknown links, and other users' runs, are NOT_FOUND."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import httpx
import pytest

from quant_platform.api.auth import signing_secret
from quant_platform.research import share
from tests.api.test_backtest_runs import backtest_body, launch
from tests.grid.conftest import chdb_path  # noqa: F401 - a copy of the klines
from tests.research.conftest import chromium  # noqa: F401 - the system Chromium


@pytest.fixture
def run(api, chdb_path):  # noqa: F811
    """A succeeded run of the trader's backtest: (backtest id, run id)."""
    with api.client("trader") as c:
        bid = c.post("/api/v1/backtests", json=backtest_body()).json()["backtest_id"]
        (run_id,) = c.post(f"/api/v1/backtests/{bid}/runs", json={"mode": "single"}).json()["run_ids"]
    (result,) = launch(api, chdb_path, dg.DagsterInstance.ephemeral())
    assert result.success
    return bid, run_id


def not_found(response: httpx.Response) -> bool:
    return response.status_code == 404 and response.json()["error"]["code"] == "NOT_FOUND"


def test_the_report_artifact_is_the_owners(api, run):
    bid, run_id = run
    with api.client("trader") as c, api.client("other") as other, api.client("admin") as admin:
        links = c.get(f"/api/v1/backtests/{bid}/runs/{run_id}").json()["artifacts"]
        assert links["report"] == f"/api/v1/runs/{run_id}/artifacts/report"
        r = c.get(links["report"])
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert run_id in r.text and "Plotly.newPlot" in r.text and "<script src=" not in r.text
        assert "default-src 'none'" in r.headers["content-security-policy"]
        assert admin.get(links["report"]).status_code == 200
        assert not_found(other.get(links["report"]))
        assert not_found(c.get("/api/v1/runs/no-such-run/artifacts/report"))


def test_share_links_open_without_credentials_until_revoked(api, run):
    _, run_id = run
    path = f"/api/v1/runs/{run_id}/share"
    with (
        api.client("trader") as c,
        api.client("other") as other,
        api.client("viewer") as viewer,
        api.client() as anonymous,
    ):
        assert not_found(other.post(path))  # not theirs: as if it did not exist
        assert viewer.post(path).json()["error"]["code"] == "FORBIDDEN"  # viewers read only
        assert c.post(path, json={"expires_in_days": 31}).status_code == 422
        assert c.post(path, json={"expires_in_days": 1, "extra": 1}).status_code == 422

        before = dt.datetime.now(dt.UTC)
        r = c.post(path, headers={"Idempotency-Key": "share-1"})
        assert r.status_code == 201, r.text
        link = r.json()
        expires = dt.datetime.fromisoformat(link["expires_at"])
        assert dt.timedelta(days=7) - dt.timedelta(seconds=5) < expires - before <= dt.timedelta(days=7)
        assert link["url"].startswith("/api/v1/shared/") and link["share_id"] in link["url"]
        assert c.post(path, headers={"Idempotency-Key": "share-1"}).json() == link  # replayed, not a 2nd link
        short = c.post(path, json={"expires_in_days": 2}).json()
        assert dt.datetime.fromisoformat(short["expires_at"]) < expires
        assert short["share_id"] != link["share_id"]

        shared = anonymous.get(link["url"])
        assert shared.status_code == 200 and shared.headers["content-type"].startswith("text/html")
        assert run_id in shared.text and "Plotly.newPlot" in shared.text
        assert shared.headers["referrer-policy"] == "no-referrer"
        assert "no-store" in shared.headers["cache-control"]
        assert anonymous.post(link["url"]).status_code == 405  # read-only

        token = link["url"].rsplit("/", 1)[1]
        sid, expiry, mac = token.split(".")
        tampered = [
            f"{sid}.{int(expiry) + 86_400}.{mac}",  # a longer life
            f"{short['share_id']}.{expiry}.{mac}",  # another link's id
            f"{sid}.{expiry}.{mac[:-2]}{'AA' if mac[-2:] != 'AA' else 'BB'}",  # a forged signature
            "not-a-token",
            "x" * 500,
        ]
        for bad in tampered:
            r = anonymous.get(f"/api/v1/shared/{bad}")
            assert not_found(r), bad
            assert set(r.json()["error"]) == {"code", "message", "details"}

        assert not_found(other.delete(f"{path}/{link['share_id']}"))
        assert not_found(c.delete(f"{path}/{'0' * 32}"))
        assert c.delete(f"{path}/{link['share_id']}").status_code == 204
        assert c.delete(f"{path}/{link['share_id']}").status_code == 204  # idempotent
        assert not_found(anonymous.get(link["url"]))
        assert anonymous.get(short["url"]).status_code == 200  # revoking one link leaves the others
        listed = {x["share_id"]: x for x in c.get(path).json()}
        assert (
            listed[link["share_id"]]["state"] == "revoked" and listed[short["share_id"]]["state"] == "active"
        )
        assert listed[short["share_id"]]["url"] == short["url"] and not_found(other.get(path))

    with api.client("admin") as admin:  # admins may share anyone's run
        assert admin.post(path).status_code == 201


def test_expired_links_are_not_found(api, run):
    _, run_id = run
    secret = signing_secret(api.server.settings)
    trader = api.warm.get_user("trader")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    past = api.warm.create_share_link(share.new_share_id(), run_id, trader.id, now - dt.timedelta(minutes=1))
    live = api.warm.create_share_link(share.new_share_id(), run_id, trader.id, now + dt.timedelta(days=1))
    with api.client() as anonymous:
        opened = anonymous.get(f"/api/v1/shared/{share.sign(live.id, live.expires_at, secret)}")
        assert opened.status_code == 200
        assert not_found(anonymous.get(f"/api/v1/shared/{share.sign(past.id, past.expires_at, secret)}"))
        # a token claiming a later expiry than its row (signed with the right key) is not enough either
        later = share.sign(past.id, now + dt.timedelta(days=1), secret)
        assert not_found(anonymous.get(f"/api/v1/shared/{later}"))


def test_a_shared_report_renders_in_chromium_under_its_content_policy(api, run, chromium):  # noqa: F811
    from playwright.sync_api import sync_playwright

    _, run_id = run
    with api.client("trader") as c:
        url = api.url + c.post(f"/api/v1/runs/{run_id}/share").json()["url"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        page = browser.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        assert page.goto(url).status == 200
        page.wait_for_selector("#charts.js-plotly-plot .main-svg", timeout=30_000)
        assert page.evaluate("document.getElementById('charts').data.length") == 2
        browser.close()
    assert problems == []  # no script or style blocked by the Content-Security-Policy
