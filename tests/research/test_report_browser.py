"""`backtest report` opens in a real browser: headless Chromium (driven by Playwright, the system
binary) loads the file from disk, offline, renders both charts, zooms, and pages through the trades."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from quant_platform.cli import app


@pytest.fixture
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        # --no-sandbox: CI containers run as root, where Chromium's sandbox cannot start
        b = pw.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


def test_the_report_renders_its_charts_offline_and_zooms(recorded_runs, tmp_path, browser):
    out = tmp_path / "run.html"
    result = CliRunner().invoke(
        app, ["backtest", "report", recorded_runs[1], "--out", str(out), "--page-size", "3"]
    )
    assert result.exit_code == 0, result.output

    context = browser.new_context(offline=True)  # the file must not need the network
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("request", lambda r: None if r.url.startswith(("file:", "data:")) else problems.append(r.url))
    page.goto(out.as_uri())
    page.wait_for_selector("#charts.js-plotly-plot .main-svg", timeout=30_000)

    traces = page.evaluate("document.getElementById('charts').data.map(t => t.name)")
    assert traces == ["equity", "drawdown"]
    for subplot in ("xy", "x2y2"):  # each drawn in its panel, not just declared
        assert page.locator(f"#charts .cartesianlayer .subplot.{subplot} .scatterlayer .trace").count() == 1
    assert page.locator("#charts .rangeselector .button").count() == 6
    assert page.locator("#charts .rangeslider-container").count() == 1

    def ranges() -> tuple[list[str], list[str]]:  # the equity panel's axis, the drawdown panel's
        return tuple(
            page.evaluate(f"document.getElementById('charts')._fullLayout.{axis}.range")
            for axis in ("xaxis", "xaxis2")
        )

    full, _ = ranges()
    box = page.locator("#charts .draglayer .xy .nsewdrag").bounding_box()  # drag-zoom the equity panel
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.3, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, y, steps=8)
    page.mouse.up()
    page.wait_for_function(f"document.getElementById('charts')._fullLayout.xaxis.range[0] !== {full[0]!r}")
    zoomed, drawdown_axis = ranges()
    assert full[0] < zoomed[0] < zoomed[1] < full[1]
    assert drawdown_axis == zoomed  # one shared time axis: the drawdown panel follows
    page.get_by_text("all", exact=True).click()  # the range selector's "all" button
    page.wait_for_function(f"document.getElementById('charts')._fullLayout.xaxis.range[0] !== {zoomed[0]!r}")
    assert ranges()[0] == full

    assert page.locator("#trades tbody tr").count() == 3
    first_page = page.locator("#trades tbody").inner_text()
    page.click("#trades-next")
    assert page.locator("#trades-page").inner_text().startswith("page 2 of ")
    assert page.locator("#trades tbody").inner_text() != first_page
    assert page.is_disabled("#trades-prev") is False
    assert problems == []
    context.close()
