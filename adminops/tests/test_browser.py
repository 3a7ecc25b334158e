"""An employee's afternoon in headless Chromium: sign in, edit an achievement, run a tool,
watch the operations dashboard draw its charts. Screenshots go to SCREENSHOTS."""

import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from accounts.models import User, UserSession
from adminops.models import AuditAction, AuditLog, Job, JobKind, JobStatus
from adminops.tests.factories import AchievementFactory
from config.caching import CacheType, cache_get_or_set

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# The dashboard redraws its charts every few seconds; an element found just before is gone.
REDRAWN = StaleElementReferenceException
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.TemporaryDirectory(prefix="rankly-chromium-")
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1300",
        f"--user-data-dir={profile.name}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
    profile.cleanup()


def _shot(driver, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def _traffic(base_url: str, ok: int, missing: int) -> None:
    """Requests from outside the browser, so the request and error charts have something."""
    for _ in range(ok):
        urllib.request.urlopen(f"{base_url}/api/products/", timeout=10).read()
    for _ in range(missing):
        try:
            urllib.request.urlopen(f"{base_url}/api/no-such-page/", timeout=10)
        except urllib.error.HTTPError as exc:
            assert exc.code == 404


def _series(driver, chart: str) -> dict[str, float]:
    """Each drawn line of a chart: its series name and the value of its last point.

    Read in one script: the page redraws its charts every few seconds, and an element found
    before a redraw is gone by the time a separate call reads its attributes."""
    pairs = driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]),"
        " p => [p.dataset.series, p.dataset.last]);",
        f'[data-chart="{chart}"] svg path.series',
    )
    return {name: float(last) for name, last in pairs}


def _last(driver, chart: str, series: str) -> float:
    return _series(driver, chart).get(series, 0.0)


def test_employee_signs_in_edits_runs_a_tool_and_watches_the_dashboard(
    live_server, browser, transactional_db
):
    User.objects.create_user("ops@example.com", PASSWORD, is_staff=True, is_superuser=True)
    customer = User.objects.create_user("online@example.com")
    UserSession.objects.create(user=customer, token_hash="browser-test-session")
    achievement = AchievementFactory(name="Seasoned", points=25)
    print(f"\nscreenshots: {SCREENSHOTS}")

    browser.get(f"{live_server.url}/admin/login/")
    browser.find_element(By.NAME, "username").send_keys("ops@example.com")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    WebDriverWait(browser, 15).until(lambda d: d.find_elements(By.ID, "operations-module"))
    _shot(browser, "1-admin-index")

    browser.get(f"{live_server.url}/admin/gamification/achievement/{achievement.pk}/change/")
    name = browser.find_element(By.NAME, "name")
    name.clear()
    name.send_keys("Seasoned Ranker")
    browser.find_element(By.NAME, "_save").click()
    WebDriverWait(browser, 15).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".messagelist"))
    _shot(browser, "2-achievement-saved")
    achievement.refresh_from_db()
    assert achievement.name == "Seasoned Ranker"
    assert AuditLog.objects.filter(
        action=AuditAction.ACHIEVEMENT_UPDATE, actor__email="ops@example.com"
    ).exists()

    browser.get(f"{live_server.url}/admin/dashboard/tools/")
    browser.find_element(By.ID, "run-warm_caches").click()
    WebDriverWait(browser, 15).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".messagelist"))
    assert "Warm every cache type" in browser.find_element(By.CSS_SELECTOR, ".messagelist").text
    _shot(browser, "3-tool-run")
    assert AuditLog.objects.filter(action=AuditAction.CACHE_WARM).exists()

    for _ in range(3):
        # The live server runs in this process, so these count in its cache figures.
        cache_get_or_set(CacheType.PRODUCTS, "browser-test", lambda: "cached")
    browser.get(f"{live_server.url}/admin/dashboard/")

    def request_line_rose(driver) -> bool:
        _traffic(live_server.url, ok=6, missing=0)
        return _last(driver, "request_rate", "all instances") > 0 or any(
            _last(driver, "request_rate", name) > 0 for name in _series(driver, "request_rate")
        )

    WebDriverWait(browser, 60, poll_frequency=1, ignored_exceptions=[REDRAWN]).until(
        request_line_rose
    )
    _shot(browser, "4-dashboard")
    # Earlier tests of this process answer through the same counters: the burst must move the
    # error line up from wherever it stands.
    errors_before = _last(browser, "error_rate", "4xx")
    for chart, unit in [("request_rate", "req/s"), ("latency", "ms"), ("error_rate", "%")]:
        legend = browser.find_element(By.CSS_SELECTOR, f'[data-chart="{chart}"] .ops-legend').text
        assert unit in legend, (chart, legend)
    assert set(_series(browser, "latency")) == {"p50", "p95", "p99"}
    assert "users" in browser.find_element(By.ID, "ops-online").text

    def error_band_crossed(driver) -> bool:
        # Nothing but 404s for a while: the 4xx share of the last minute crosses its threshold.
        _traffic(live_server.url, ok=0, missing=8)
        band = driver.find_elements(By.CSS_SELECTOR, '[data-chart="error_rate"] rect.alert-band')
        crossed = bool(band) and band[0].get_attribute("data-crossed") == "true"
        # Read once: the next refresh may move the line while the share hovers at the band.
        share = _last(driver, "error_rate", "4xx")
        return crossed and share > errors_before and share > 25

    WebDriverWait(browser, 60, poll_frequency=1, ignored_exceptions=[REDRAWN]).until(
        error_band_crossed
    )
    _shot(browser, "5-dashboard-error-alert")
    alerts = browser.find_element(By.ID, "ops-alerts").text
    assert "error 4xx percent" in alerts
    assert browser.find_element(By.ID, "ops-error").get_attribute("hidden") is not None

    # A running job appears with its progress, and the progress moves without a reload.
    job = Job.objects.create(
        kind=JobKind.REBUILD_POINTS, status=JobStatus.RUNNING, done=40, total=100
    )

    def jobs_text(driver) -> str:
        return driver.find_element(By.ID, "ops-jobs").text

    WebDriverWait(browser, 15).until(lambda d: "40 / 100 (40 %)" in jobs_text(d))
    assert "rebuild_points" in jobs_text(browser)
    Job.objects.filter(pk=job.pk).update(done=90)
    WebDriverWait(browser, 15).until(lambda d: "90 / 100 (90 %)" in jobs_text(d))
    _shot(browser, "5-dashboard-job")
    Job.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED)
    WebDriverWait(browser, 15).until(lambda d: "No job queued or running." in jobs_text(d))
    browser.find_element(By.LINK_TEXT, "Analytics").click()
    WebDriverWait(browser, 15).until(lambda d: d.find_elements(By.ID, "analytics-views"))
    _shot(browser, "6-analytics")
    assert "Most viewed paths" in browser.find_element(By.ID, "analytics-views").text
    # The form's own limits stop a browser from sending this; a typed URL still can.
    browser.get(f"{live_server.url}/admin/dashboard/analytics/?days=400")
    WebDriverWait(browser, 15).until(lambda d: d.find_elements(By.ID, "analytics-errors"))
    assert "days" in browser.find_element(By.ID, "analytics-errors").text
