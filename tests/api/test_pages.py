"""The HTML pages through the API (auth on): report page, figures, export, dashboard, sign-in.

The browser-level checks (rendering, no network, live refresh) are in
tests/integration/test_pages_browser.py; these pin the rules: ownership, the cookie,
escaping, the readable summary.
"""

from __future__ import annotations

import re
import subprocess
import sys

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.api.deps import KEY_COOKIE
from tests.api.conftest import Caller, assert_problem
from tests.api.factories import make_job

JOBS = "/api/v1/jobs"
HTML = {"Accept": "text/html"}


def test_the_job_summary_is_in_percent_before_the_spec_and_links_the_report(
    client: TestClient, alice: Caller, db: Session
) -> None:
    job = make_job(db, alice.id, status="succeeded")
    db.commit()
    shown = client.get(f"{JOBS}/{job.id}", headers=alice.headers).json()
    keys = list(shown)
    assert keys.index("result") < keys.index("spec") and keys[-1] == "spec"
    result = shown["result"]
    assert result["float_accuracy_pct"] == 97.0
    assert result["naive_pct"]["mean"] == 83.0 and result["naive_drop_pp"] == 14.0
    assert result["verdict"].startswith("Float 97.00%, naive 83.00% (-14.00 pp)")
    assert shown["links"]["report"] == f"{JOBS}/{job.id}/report"


def test_a_report_page_shows_the_verdict_and_serves_its_figures(
    client: TestClient, alice: Caller, db: Session
) -> None:
    job = make_job(db, alice.id, status="succeeded", events=3)
    db.commit()
    page = client.get(f"{JOBS}/{job.id}/report", headers=alice.headers)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "Float 97.00%, naive 83.00%" in html and 'http-equiv="refresh"' not in html
    sources = re.findall(r'<img src="([^"]+)"', html)
    # The sample report predates figure data: accuracy, chips and (events) training.
    assert {s.split("/")[-1].split(".")[0] for s in sources} == {"accuracy", "chips", "training"}
    for source in sources:
        figure = client.get(source, headers=alice.headers)
        assert figure.status_code == 200 and figure.headers["content-type"] == "image/svg+xml"
        assert figure.content.startswith(b"<?xml") and b"<svg" in figure.content
    missing = client.get(f"{JOBS}/{job.id}/report/figures/device.svg", headers=alice.headers)
    assert_problem(missing, 404, "no figure 'device'")


def test_the_export_is_one_file_with_every_figure_inlined(
    client: TestClient, alice: Caller, db: Session
) -> None:
    job = make_job(db, alice.id, status="succeeded")
    db.commit()
    export = client.get(f"{JOBS}/{job.id}/report", params={"download": 1}, headers=alice.headers)
    assert export.status_code == 200
    assert "attachment" in export.headers["content-disposition"]
    sources = re.findall(r'src="([^"]+)"', export.text)
    assert sources and all(s.startswith("data:image/svg+xml;base64,") for s in sources)
    assert "/docs" not in export.text  # no links back into the server


def test_another_key_gets_404_and_no_key_gets_401_as_html_or_problem(
    client: TestClient, alice: Caller, bob: Caller, db: Session
) -> None:
    job = make_job(db, alice.id, status="succeeded")
    db.commit()
    url = f"{JOBS}/{job.id}/report"
    assert_problem(client.get(url, headers=bob.headers), 404, "not found")
    page = client.get(url, headers={**bob.headers, **HTML})
    assert page.status_code == 404 and "Not found" in page.text
    assert client.get(f"{url}/figures/accuracy.svg", headers=bob.headers).status_code == 404
    assert_problem(client.get(url), 401, "needs an API key")
    signin = client.get(url, headers=HTML)
    assert signin.status_code == 401 and 'action="/session"' in signin.text


def test_the_sign_in_cookie_shows_the_dashboard_of_that_key_only(
    client: TestClient, alice: Caller, bob: Caller, db: Session
) -> None:
    mine = make_job(db, alice.id, status="running")
    theirs = make_job(db, bob.id, status="succeeded")
    db.commit()
    assert client.get("/").status_code == 401
    refused = client.post("/session", data={"key": "hws_wrong"}, follow_redirects=False)
    assert refused.status_code == 401 and "not valid" in refused.text
    signed = client.post("/session", data={"key": alice.secret}, follow_redirects=False)
    assert signed.status_code == 303
    set_cookie = signed.headers["set-cookie"]
    assert KEY_COOKIE in set_cookie and "HttpOnly" in set_cookie and "SameSite=lax" in set_cookie
    try:
        dashboard = client.get("/")
        assert dashboard.status_code == 200
        assert mine.id in dashboard.text and theirs.id not in dashboard.text
        assert 'http-equiv="refresh"' in dashboard.text  # a job is running
        only_done = client.get("/", params={"status": "succeeded"})
        assert mine.id not in only_done.text
        # The cookie opens pages only: the JSON API still wants a header.
        assert client.get(JOBS).status_code == 401
    finally:
        client.post("/session/clear", follow_redirects=False)
        client.cookies.clear()


def test_job_text_is_escaped_on_the_pages(client: TestClient, alice: Caller, db: Session) -> None:
    body = {
        "profile": {"inline": {"name": "<script>alert(1)</script>", "weights": {"bits": 3}}},
        "training": {"epochs": 1, "hw_epochs": 1},
    }
    job = make_job(db, alice.id, status="succeeded", body=body)
    db.commit()
    html = client.get(f"{JOBS}/{job.id}/report", headers=alice.headers).text
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_the_api_process_never_imports_torch() -> None:
    code = "import app.main, sys; assert 'torch' not in sys.modules, 'torch imported'"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr


def test_pages_and_figures_forbid_scripts_and_outside_requests(
    client: TestClient, alice: Caller, db: Session
) -> None:
    job = make_job(db, alice.id, status="succeeded", events=3)
    db.commit()
    report = client.get(f"{JOBS}/{job.id}/report", headers=alice.headers)
    figure = client.get(f"{JOBS}/{job.id}/report/figures/accuracy.svg", headers=alice.headers)
    signin = client.get("/", headers=HTML)  # no key: the sign-in form, still a page
    for page in (report, figure, signin):
        policy = page.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "script-src" not in policy
        assert "frame-ancestors 'none'" in policy
        assert page.headers["x-content-type-options"] == "nosniff"
    docs = client.get("/docs")  # Swagger UI runs its own scripts: its policy stays
    assert "script-src 'self'" in docs.headers["content-security-policy"]
    api = client.get(f"{JOBS}/{job.id}", headers=alice.headers)
    assert "content-security-policy" not in api.headers
