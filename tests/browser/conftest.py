"""Playwright on Debian's Chromium (never a downloaded browser), plus helpers the browser tests
share: screenshots under test-artifacts/screenshots/ and an accessibility sanity check."""

import shutil
from pathlib import Path

import pytest
from django.db import connections

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu"]
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True}
DESKTOP = {"viewport": {"width": 1280, "height": 800}}

# What every page must get right, checked in the page itself. Returns a list of problems.
A11Y_CHECK = """() => {
  const problems = [];
  const html = document.documentElement;
  if (!html.getAttribute("lang")) problems.push("<html> has no lang");
  const h1 = document.querySelectorAll("h1");
  if (h1.length !== 1) problems.push(`${h1.length} <h1> elements (want 1)`);
  if (!document.title.trim()) problems.push("empty <title>");
  if (!document.querySelector("main")) problems.push("no <main>");
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (el.type === "hidden") continue;
    const labelled = [...(el.labels || [])].some((l) => l.textContent.trim())
      || (el.getAttribute("aria-label") || "").trim()
      || (el.getAttribute("aria-labelledby") || "").trim();
    if (!labelled) problems.push(`unlabelled ${el.tagName.toLowerCase()} name=${el.name}`);
  }
  for (const el of document.querySelectorAll("a[href], button")) {
    const name = (el.textContent || "").trim() || el.getAttribute("aria-label") || el.title;
    if (!name) problems.push(`${el.tagName.toLowerCase()} without an accessible name`);
  }
  for (const img of document.querySelectorAll("img:not([alt])")) problems.push(`img without alt: ${img.src}`);
  for (const el of document.querySelectorAll("[aria-describedby], [aria-labelledby]")) {
    const refs = `${el.getAttribute("aria-describedby") || ""} ${el.getAttribute("aria-labelledby") || ""}`;
    for (const id of refs.split(/\\s+/).filter(Boolean)) {
      if (!document.getElementById(id)) problems.push(`aria reference to missing #${id}`);
    }
  }
  const ids = [...document.querySelectorAll("[id]")].map((e) => e.id);
  for (const id of new Set(ids.filter((id, i) => ids.indexOf(id) !== i))) problems.push(`duplicate id #${id}`);
  if (html.scrollWidth > window.innerWidth + 1) problems.push(`page scrolls sideways (${html.scrollWidth}px > ${window.innerWidth}px)`);
  return problems;
}"""


# Every Content-Security-Policy violation of a page, reported to the test (new_page) as it happens,
# whatever the blocked thing was (an inline script or style, an outside image, a socket).
CSP_WATCH = """document.addEventListener("securitypolicyviolation", (e) => {
  window.__o2oCspViolation(`${e.effectiveDirective} blocked ${e.blockedURI || "inline"}`
    + ` at ${e.sourceFile || document.URL}:${e.lineNumber} (${(e.sample || "").slice(0, 60)})`);
});"""


@pytest.fixture
def browser(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; Django refuses ORM calls while one
    # runs unless told it is safe, which it is here: the test itself is plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
            # Django keeps connections per context, and with Playwright's dispatcher running the
            # test body got a context (so a connection) of its own: close it, or PostgreSQL
            # refuses to drop the test database at the end of the run ("being accessed by other
            # users").
            connections.close_all()


@pytest.fixture
def new_page(browser, live_server):
    """A page in a fresh context (its own cookies) that can reach only the live server, and that
    fails the test on any JavaScript error, console error, failed request of the app or
    Content-Security-Policy violation."""
    problems: list[str] = []
    ours = live_server.url

    def external(url: str) -> bool:
        return url.startswith(("http:", "https:", "ws:", "wss:")) and not url.startswith(ours)

    def on_console(msg):
        # Blocked outside requests (the live map's tiles) and the live map's websocket (pytest-
        # django's live server speaks WSGI only) are the test set-up's doing, not the page's.
        url = (msg.location or {}).get("url", "")
        if msg.type == "error" and not external(url) and "WebSocket" not in msg.text:
            problems.append(f"console error: {msg.text} ({url})")
        elif "Content Security Policy" in msg.text:  # even about an outside URL or a socket
            problems.append(f"CSP: {msg.text} ({url})")

    def on_response(response):
        if response.url.startswith(ours) and "/ws/" not in response.url and response.status >= 400:
            problems.append(f"HTTP {response.status} {response.url}")

    def _new_page(**context_options):
        context = browser.new_context(**context_options)
        # Tests never touch the internet: the outcome must not depend on it.
        context.route(external, lambda route: route.abort())
        context.expose_binding(
            "__o2oCspViolation",
            lambda source, text: problems.append(f"CSP violation: {text} ({source['page'].url})"),
        )
        context.add_init_script(CSP_WATCH)
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.on("pageerror", lambda exc: problems.append(f"JS error: {exc}"))
        page.on("console", on_console)
        page.on("response", on_response)
        return page

    _new_page.problems = problems  # for a test of the watch itself (tests/browser/test_csp.py)
    yield _new_page
    assert not problems, problems


@pytest.fixture
def shot():
    """shot(page, name): a full-page screenshot in test-artifacts/screenshots/NAME.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def _shot(page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return _shot


@pytest.fixture
def assert_accessible():
    def _check(page):
        problems = page.evaluate(A11Y_CHECK)
        assert not problems, f"{page.url}: {problems}"

    return _check


# axe-core from the npm registry (MPL-2.0), vendored: never fetched at run time.
AXE_SOURCE = Path(__file__).resolve().parent / "assets" / "axe-core-4.11.0" / "axe.min.js"
AXE_RUN = """async (impacts) => {
  const result = await window.axe.run(document, {
    runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]},
  });
  return result.violations
    .filter((v) => impacts.includes(v.impact))
    .map((v) => `${v.impact} ${v.id}: ${v.help} at `
      + v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", "));
}"""


def _axes_own_style(problem: str) -> bool:
    return "Applying inline style" in problem or "style-src-elem blocked inline" in problem


@pytest.fixture
def axe(new_page):
    """axe(page): the serious and critical axe-core violations of the page as it is now, as a
    list of sentences (empty when there are none). The script goes in through the DevTools
    protocol, so the page's Content-Security-Policy does not block it (and is not weakened).
    On some pages axe adds <style> elements of its own while it measures, which the page's CSP
    rightly blocks: those reports, and only those, made during the run are not the page's."""
    source = AXE_SOURCE.read_text(encoding="utf-8")
    problems = new_page.problems

    def _axe(page, impacts=("serious", "critical")) -> list[str]:
        before = len(problems)
        if not page.evaluate("() => typeof window.axe === 'object'"):
            page.evaluate(f"() => {{ {source}\n }}")
        found = page.evaluate(AXE_RUN, list(impacts))
        page.wait_for_timeout(50)  # console reports arrive after the run
        problems[before:] = [p for p in problems[before:] if not _axes_own_style(p)]
        return found

    return _axe
