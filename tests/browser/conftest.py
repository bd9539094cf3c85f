"""Fixtures of the console's browser tests: one Chromium for the whole run, a fresh browser
context (own sessionStorage/localStorage) and a fresh server for each test, every process
killed at teardown; on a failure, the server's log tail and a screenshot.

Run: target/browser-venv/bin/python -m pytest -q tests/browser   (made by scripts/setup.sh)
"""
import os
import sys

import pytest
from playwright.sync_api import expect, sync_playwright

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

expect.set_options(timeout=10_000)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep


def failed(request):
    return any(getattr(request.node, f"rep_{w}", None) is not None and getattr(request.node, f"rep_{w}").failed
               for w in ("setup", "call"))


@pytest.fixture(scope="session")
def browser():
    os.makedirs(harness.SHOTS, exist_ok=True)
    with sync_playwright() as pw:
        browser = harness.launch_browser(pw)
        yield browser
        browser.close()


def started_processes(request, make, what):
    """A fixture's body: yields `start(*args)`, which makes a process with `make(*args)` and
    launches it; at teardown every process the test started is killed (with, on a failure,
    the log tail of each `what`)."""
    started = []

    def start(*args, **kw):
        proc = make(*args, **kw)
        started.append(proc)
        proc.launch()
        return proc

    yield start
    if failed(request):
        for p in started:
            print(f"\n--- {what} log tail ({p.log_path}) ---\n{p.log_tail()}", file=sys.stderr)
    harness.kill_all()
    for p in started:
        p.cleanup()


@pytest.fixture
def servers(request):
    """`servers(**kw)` starts a server (see harness.Server.small); all are killed at teardown,
    with every other process the test started."""
    yield from started_processes(request, harness.Server.small, "server")


@pytest.fixture
def previews(request):
    """`previews(wasm)` starts `template preview` on a copy of `wasm` (see harness.Preview);
    all are killed at teardown."""
    yield from started_processes(request, harness.Preview, "preview")


@pytest.fixture
def new_page(browser, request):
    """`new_page()`: a page in a fresh context (its own sessionStorage and localStorage);
    `page.errors` collects its console errors and uncaught exceptions, `page.urls` the URLs
    of every request and WebSocket it made. All are closed at teardown."""
    pages = []

    def make():
        context = browser.new_context(viewport=harness.VIEWPORT)
        if os.environ.get("SM_WEB_DIR"):
            harness.serve_web_from(context, os.environ["SM_WEB_DIR"])
        page = context.new_page()
        page.errors, page.urls = [], []
        page.on("console", lambda m: m.type == "error" and page.errors.append(f"console: {m.text}"))
        page.on("pageerror", lambda e: page.errors.append(f"pageerror: {e}"))
        page.on("request", lambda r: page.urls.append(r.url))
        page.on("websocket", lambda ws: page.urls.append(ws.url))
        pages.append(page)
        return page

    yield make
    for i, page in enumerate(pages):
        if failed(request):
            try:
                page.screenshot(path=os.path.join(harness.SHOTS, f"{request.node.name}-failure-{i}.png"))
            except Exception as e:  # noqa: BLE001 - the failure itself matters more
                print(f"no failure screenshot: {e}", file=sys.stderr)
            if page.errors:
                print("page errors:\n  " + "\n  ".join(page.errors), file=sys.stderr)
        page.context.close()


@pytest.fixture
def page(new_page):
    return new_page()
