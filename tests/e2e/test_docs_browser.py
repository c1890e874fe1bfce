"""/docs and /redoc in headless Chromium with every request off this machine refused: they render offline."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.conftest import ApiServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LOCAL = {"127.0.0.1", "localhost", "::1", "[::1]"}
CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "chromium", "google-chrome")


def _chromium() -> str:
    """The system Chromium; skipped (with the reason) when there is none, a failure under CI."""
    found = next((path for name in CANDIDATES if (path := shutil.which(name))), None)
    if found is None:
        reason = f"no Chromium found (looked for {', '.join(CANDIDATES)}): the browser test of /docs did not run"
        if os.environ.get("CI"):
            pytest.fail(reason)
        print(reason)
        pytest.skip(reason)
    return found


@pytest.fixture(scope="module")
def offline_page() -> Iterator[tuple[object, list[str]]]:
    """A Chromium page whose requests to anything but this machine are aborted; the aborted URLs."""
    from playwright.sync_api import Route, sync_playwright

    executable = _chromium()
    refused: list[str] = []

    def local_only(route: Route) -> None:
        host = urlsplit(route.request.url).hostname or ""
        if route.request.url.startswith(("data:", "blob:")) or host in LOCAL:
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.route("**/*", local_only)
            yield page, refused
        finally:
            browser.close()


def _schema(api: ApiServer) -> dict[str, dict[str, object]]:
    paths: dict[str, dict[str, object]] = httpx.get(api.url + "/openapi.json", timeout=30).json()["paths"]
    return paths


def test_swagger_ui_renders_every_operation_with_the_network_cut(api_server: ApiServer, offline_page) -> None:  # type: ignore[no-untyped-def]
    page, refused = offline_page
    # When /docs opens in a browser that can reach nothing but this machine
    page.goto(api_server.url + "/docs")
    page.wait_for_selector(".opblock", timeout=60_000)
    # Then Swagger UI lists every path of the API (its script and styles came from the API itself)
    shown = set(page.locator(".opblock-summary-path").evaluate_all("nodes => nodes.map(n => n.dataset.path)"))
    assert shown == set(_schema(api_server))
    assert not [url for url in refused if url.endswith((".js", ".css"))], refused


def test_redoc_renders_the_operations_with_the_network_cut(api_server: ApiServer, offline_page) -> None:  # type: ignore[no-untyped-def]
    page, refused = offline_page
    page.goto(api_server.url + "/redoc")
    page.wait_for_selector('[data-section-id^="operation/"]', timeout=60_000)
    operations = sum(len(methods) for methods in _schema(api_server).values())
    assert page.locator('[data-section-id^="operation/"]').count() >= operations
    assert not [url for url in refused if url.endswith((".js", ".css"))], refused
