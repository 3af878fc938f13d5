"""The pages in real headless Chromium (Debian's /usr/bin/chromium driven by Playwright).

Against the live stack: /docs and /redoc render with no request leaving the machine; the
report page of a real job refreshes itself from queued/running to succeeded, then shows
every figure with no console error and the API's own numbers; the dashboard shows the
signed-in key's jobs only. Screenshots go to screens/ (not committed) for a person to see.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from app.api.deps import KEY_COOKIE
from app.api.examples import QUICK
from app.core.security import create_api_key
from tests.api.factories import make_job
from tests.integration.conftest import Stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SCREENS = Path(__file__).resolve().parents[2] / "screens"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium: scripts/ensure-services.sh installs it")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    yield context.new_page()
    context.close()


def _base(stack: Stack) -> str:
    return str(stack.api.base_url).rstrip("/")


@pytest.mark.parametrize(
    ("path", "rendered"), [("/docs", ".swagger-ui .opblock"), ("/redoc", ".api-content h2")]
)
def test_the_docs_render_with_no_request_leaving_the_machine(
    stack: Stack, page: Page, path: str, rendered: str
) -> None:
    hosts: list[str] = []

    def record(url: str) -> None:
        if urlsplit(url).scheme not in {"data", "blob"}:  # in-page, not the network
            hosts.append(urlsplit(url).hostname or "")

    page.on("request", lambda request: record(request.url))
    page.goto(_base(stack) + path)
    page.wait_for_selector(rendered, timeout=20_000)
    page.wait_for_load_state("networkidle")
    assert "POST" in page.content() or path == "/redoc"
    assert hosts and set(hosts) <= {"127.0.0.1"}, sorted(set(hosts))


def test_a_report_page_follows_a_real_job_to_success_and_shows_its_figures(
    stack: Stack, page: Page
) -> None:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    figures: dict[str, int] = {}

    def record(response: object) -> None:
        url = response.url  # type: ignore[attr-defined]
        if url.endswith(".svg") or ".svg?" in url:
            figures[url] = len(response.body()) if response.ok else -response.status  # type: ignore[attr-defined]

    page.on("response", record)
    job = stack.submit(**QUICK)  # the OpenAPI's quick example, as it is
    page.goto(f"{_base(stack)}/api/v1/jobs/{job['id']}/report")
    assert page.text_content("#status") in {"queued", "running"}
    assert page.locator('meta[http-equiv="refresh"]').count() == 1

    # A locator assertion, not wait_for_function: the page's CSP forbids eval.
    expect(page.locator("#status")).to_have_text("succeeded", timeout=90_000)
    page.wait_for_load_state("networkidle")
    result = stack.job(job["id"])["result"]
    assert page.text_content("#verdict") == result["verdict"]
    shown = {
        name: page.text_content(f'[data-value="{name}"]')
        for name in ("float", "naive", "hardware_aware", "naive_drop", "hardware_aware_drop")
    }
    assert shown == {
        "float": f"{result['float_accuracy_pct']:.2f}",
        "naive": f"{result['naive_pct']['mean']:.2f}",
        "hardware_aware": f"{result['hardware_aware_pct']['mean']:.2f}",
        "naive_drop": f"{result['naive_drop_pp']:.2f}",
        "hardware_aware_drop": f"{result['hardware_aware_drop_pp']:.2f}",
    }
    images = page.eval_on_selector_all(
        "figure img", "els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight])"
    )
    assert len(images) == 6, "accuracy, chips, training, device, weights, confusion"
    assert all(done and width > 100 and height > 100 for done, width, height in images), images
    sources = page.eval_on_selector_all("figure img", "els => els.map(e => e.src)")
    assert all(figures.get(source, 0) > 2_000 for source in sources), (sources, figures)
    assert page.locator('meta[http-equiv="refresh"]').count() == 0
    assert not errors, errors
    SCREENS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENS / "report.png"), full_page=True)


def test_the_dashboard_lists_the_signed_in_keys_jobs_only(stack: Stack, page: Page) -> None:
    with stack.sessions() as session:
        alice, alice_secret = create_api_key(session, "alice")
        bob, _ = create_api_key(session, "bob")
        mine = make_job(session, alice.id, status="succeeded")
        theirs = make_job(session, bob.id, status="running")
        session.commit()

    page.goto(_base(stack) + "/")  # loopback, no key: the local user's jobs
    page.wait_for_selector("h1")
    SCREENS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENS / "dashboard.png"), full_page=True)
    assert mine.id not in page.content() and theirs.id not in page.content()

    # The cookie the sign-in form sets (the form itself: tests/api/test_pages.py).
    page.context.add_cookies([{"name": KEY_COOKIE, "value": alice_secret, "url": _base(stack)}])
    page.goto(_base(stack) + "/")
    page.wait_for_selector("#jobs")
    rows = page.eval_on_selector_all("#jobs tr[data-job]", "rs => rs.map(r => r.dataset.job)")
    assert rows == [mine.id]
    assert page.locator(f'a[href="/api/v1/jobs/{mine.id}/report"]').count() == 1
