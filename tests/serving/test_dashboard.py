"""The dashboard in headless Chromium against a running service with a seeded history: the key prompt,
the charts, the planted spike's alert, live SLA countdowns, and a screenshot in reports/dashboard.png."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serving.conftest import LiveServer
from tests.serving.test_analytics_api import BURST, Seeded, seeded_server
from triage.pipeline import Triager

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package: CI installs it (.ci/run); no browser download
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPORTS = Path(__file__).resolve().parents[2] / "reports"
RED = "rgb(200, 49, 43)"  # --red of dashboard.css


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must run the browser test (.ci/run installs chromium, .[dev] playwright)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        _unavailable(f"no {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (the dev extra)")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def dashboard(tiny_triager: Triager, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Seeded]]:
    with seeded_server("sqlite", tiny_triager, tmp_path_factory.mktemp("dashboard")) as served:
        yield served


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    opened = context.new_page()
    opened.set_default_timeout(10_000)
    yield opened
    context.close()


def log_in(page: Any, key: str) -> None:
    page.fill("#login-key", key)
    page.click("#login-form button[type=submit]")


def test_dashboard_shows_charts_alert_and_countdowns(
    page: Any, dashboard: tuple[LiveServer, Seeded], tiny_triager: Triager
) -> None:
    server, seeded = dashboard
    page.goto(f"{server.url}/dashboard")
    assert page.is_visible("#login")
    log_in(page, "intake-key")
    page.wait_for_function("() => document.querySelector('#login-error').textContent.includes('agent')")
    assert page.is_visible("#login") and page.evaluate("sessionStorage.length") == 0

    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    log_in(page, "agent-key")
    page.wait_for_selector("#alerts .alert")
    page.wait_for_selector("#tickets tr")
    assert page.is_hidden("#login")

    # The planted spike, under its Chinese name.
    alerts = page.locator("#alerts .alert")
    assert alerts.count() == 1
    name = tiny_triager.config.label_name("category", seeded.spiked)
    text = alerts.first.inner_text()
    assert name in text and f"{seeded.daily + BURST} 件" in text

    # Both charts drawn, with data, at a usable size.
    charts = page.evaluate(
        """() => [...document.querySelectorAll('canvas')].map(c => {
            const chart = Chart.getChart(c);
            return {id: c.id, width: c.clientWidth, height: c.clientHeight, type: chart?.config.type,
                    series: chart?.data.datasets.length,
                    total: chart ? chart.data.datasets.flatMap(d => d.data).reduce((a, b) => a + b, 0) : 0};
        })"""
    )
    by_id = {c["id"]: c for c in charts}
    assert by_id["volume-chart"]["type"] == "bar" and by_id["volume-chart"]["series"] >= 2
    assert by_id["volume-chart"]["total"] == len(seeded.results)
    assert by_id["urgency-chart"]["type"] == "doughnut" and by_id["urgency-chart"]["total"] == len(seeded.results)
    assert all(c["width"] > 250 and c["height"] > 150 for c in charts), charts

    # Open tickets with live countdowns: a breached deadline in red, the new P1 case counting down.
    assert page.locator("#tickets tr").count() == len(seeded.results)
    breached = page.locator("#tickets .countdown.breached").first
    assert breached.inner_text().startswith("超时")
    assert breached.evaluate("e => getComputedStyle(e).color") == RED
    p1 = page.locator("#tickets tr", has_text=seeded.results[-1]["ticket_id"]).locator(".countdown").first
    before = p1.inner_text()
    assert before.startswith("剩余")
    page.wait_for_function("([node, before]) => node.textContent !== before", arg=[p1.element_handle(), before])
    assert p1.inner_text().startswith("剩余")

    # The model and its abstain rate.
    assert page.inner_text("#model-name") == tiny_triager.model_info["name"]
    assert page.inner_text("#kpi-abstain").endswith("%")

    REPORTS.mkdir(exist_ok=True)
    page.screenshot(path=str(REPORTS / "dashboard.png"), full_page=True)

    # Switching the view asks the service again; the key stays for the browser session.
    page.click(".segmented[data-param=bucket] button[data-value=hour]")
    page.wait_for_function("() => Chart.getChart(document.querySelector('#volume-chart'))?.config.type === 'line'")
    page.reload()
    page.wait_for_selector("#alerts .alert")
    assert page.is_hidden("#login")
    assert problems == []


def test_dashboard_files_are_served_with_a_strict_policy(dashboard: tuple[LiveServer, Seeded]) -> None:
    url = dashboard[0].url
    page = httpx.get(f"{url}/dashboard")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "<script" in page.text and "cdn" not in page.text.lower()
    script = httpx.get(f"{url}/dashboard/static/vendor/chart.umd.min.js")
    assert script.status_code == 200 and "Chart.js v4" in script.text[:200]
    for missing in ("nothing.js", "%2e%2e/routes/dashboard.py", "vendor", "a%00b"):
        r = httpx.get(f"{url}/dashboard/static/{missing}")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert "/dashboard" not in httpx.get(f"{url}/openapi.json").json()["paths"]
