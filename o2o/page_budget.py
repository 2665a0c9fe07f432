"""Pages are light (issue #18 item 5): the throttled phone every page is weighed on, the budget
the map, vendor and order pages must hold on it, and the one function that weighs a page.

Used by `bench/page_weight.py` (the figures, against the real server with production static
files) and `tests/browser/test_page_budget.py` (the budget, against the test server). Both load
each page cold (a fresh browser context: empty cache, no service worker) through Chromium's
DevTools protocol, so the bytes are what went over the wire and the paint times are the page's.

Bytes are counted *decoded* for the budget (`Network.dataReceived`): the same whether or not the
server compresses (the test server does not, production's WhiteNoise serves gzip), so the test
holds the same number the bench measures. The bench also records the transferred bytes
(`Network.loadingFinished.encodedDataLength`, headers included). Requests to other hosts (the
map's tiles from MAP_TILE_URL) are aborted by the caller before they leave the machine and are
counted apart as `blocked`: the tile server's weight is not ours, and nothing may depend on the
internet. The map's websocket frames are not counted either (they are not resources).

Playwright is a development dependency: imported only inside weigh(), which needs it.
"""

from __future__ import annotations

import contextlib
import statistics
from typing import Any

# "Slow 4G"-like, as Lighthouse's mobile preset: 150 ms round trip, 1.6 Mbit/s down,
# 750 kbit/s up, the CPU slowed 4×, a small phone's screen.
PROFILE: dict[str, Any] = {
    "latency_ms": 150,
    "down_bytes_per_s": 1_600_000 / 8,
    "up_bytes_per_s": 750_000 / 8,
    "cpu_slowdown": 4,
    "viewport": {"width": 360, "height": 780},
    "device_scale_factor": 2,
    "user_agent": (
        "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Mobile Safari/537.36"
    ),
}

KINDS = ("document", "script", "css", "image", "font", "other")
_KIND_OF = {
    "Document": "document",
    "Script": "script",
    "Stylesheet": "css",
    "Image": "image",
    "Font": "font",
}

# The ceiling per page on PROFILE: requests, decoded bytes in all and of scripts, and the first
# contentful paint (held by the bench; the test holds the deterministic counts only, see
# tests/browser/test_page_budget.py). Set about 25 % above what bench/page_weight.py measured
# (bench/README.md, "Pages are light"); FCP with more room, it moves with the machine's load.
BUDGET: dict[str, dict[str, int]] = {
    "map": {"requests": 11, "bytes": 258_000, "script_bytes": 211_000, "fcp_ms": 2_500},
    "vendor": {"requests": 9, "bytes": 66_000, "script_bytes": 11_500, "fcp_ms": 2_000},
    "order": {"requests": 10, "bytes": 72_000, "script_bytes": 21_000, "fcp_ms": 2_000},
}

TIMINGS_JS = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const paint = Object.fromEntries(performance.getEntriesByType("paint").map((p) => [p.name, p.startTime]));
  return {
    fcp_ms: paint["first-contentful-paint"] ?? null,
    dcl_ms: nav ? nav.domContentLoadedEventEnd : null,
    load_ms: nav ? nav.loadEventEnd : null,
  };
}"""


def throttle(cdp: Any) -> None:
    """Put PROFILE's network and CPU on the page behind a CDP session (Network enabled)."""
    cdp.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": PROFILE["latency_ms"],
            "downloadThroughput": PROFILE["down_bytes_per_s"],
            "uploadThroughput": PROFILE["up_bytes_per_s"],
        },
    )
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": PROFILE["cpu_slowdown"]})


def context_options() -> dict[str, Any]:
    return {
        "viewport": PROFILE["viewport"],
        "device_scale_factor": PROFILE["device_scale_factor"],
        "is_mobile": True,
        "has_touch": True,
        "user_agent": PROFILE["user_agent"],
    }


def weigh(page: Any, url: str) -> dict[str, Any]:
    """Load `url` in `page` (a fresh context's page, PROFILE's options, outside hosts already
    aborted by a route) on the throttled profile, and return what it cost: per kind the decoded
    and transferred bytes, requests, blocked requests, and FCP / DOMContentLoaded / load in ms."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    throttle(cdp)
    kind: dict[str, str] = {}
    decoded: dict[str, int] = {}
    transferred: dict[str, int] = {}
    failed: set[str] = set()

    def sent(event: dict) -> None:
        if not event["request"]["url"].startswith("data:"):
            kind[event["requestId"]] = _KIND_OF.get(event.get("type", ""), "other")

    cdp.on("Network.requestWillBeSent", sent)
    cdp.on(
        "Network.dataReceived",
        lambda e: decoded.__setitem__(
            e["requestId"], decoded.get(e["requestId"], 0) + e["dataLength"]
        ),
    )
    cdp.on(
        "Network.loadingFinished",
        lambda e: transferred.__setitem__(e["requestId"], int(e["encodedDataLength"])),
    )
    cdp.on("Network.loadingFailed", lambda e: failed.add(e["requestId"]))

    response = page.goto(url, wait_until="load")
    if response is None or response.status != 200:
        raise AssertionError(f"{url}: HTTP {response and response.status}")
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    # What the page fetches after load (its script's first calls), within reason: a page that
    # keeps polling is weighed as it stands after 5 s.
    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_load_state("networkidle", timeout=5_000)
    timings = page.evaluate(TIMINGS_JS)
    cdp.detach()

    done = [rid for rid in kind if rid in transferred and rid not in failed]
    by_kind = {
        k: {
            "requests": sum(1 for rid in done if kind[rid] == k),
            "bytes": sum(decoded.get(rid, 0) for rid in done if kind[rid] == k),
            "transfer_bytes": sum(transferred[rid] for rid in done if kind[rid] == k),
        }
        for k in KINDS
    }
    return {
        "requests": len(done),
        "blocked": sum(1 for rid in kind if rid in failed),
        "bytes": sum(v["bytes"] for v in by_kind.values()),
        "transfer_bytes": sum(v["transfer_bytes"] for v in by_kind.values()),
        "script_bytes": by_kind["script"]["bytes"],
        "by_kind": by_kind,
        **{k: round(v, 1) if v is not None else None for k, v in timings.items()},
    }


def median_of(loads: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the loads (bytes barely vary between cold loads; timings do),
    the bytes by kind of the first load, and every load's FCP."""
    numbers = [k for k, v in loads[0].items() if isinstance(v, int | float) or v is None]
    out = {k: statistics.median(r[k] or 0 for r in loads) for k in numbers}
    return {**out, "by_kind": loads[0]["by_kind"], "fcp_ms_each": [r["fcp_ms"] for r in loads]}


def over_budget(page_name: str, weight: dict[str, Any], *, timings: bool) -> list[str]:
    """What of the budget of `page_name` the weight breaks, as sentences (empty: within it)."""
    budget = BUDGET[page_name]
    checks = ["requests", "bytes", "script_bytes"] + (["fcp_ms"] if timings else [])
    return [
        f"{page_name}: {key} {weight[key]} > {budget[key]}"
        for key in checks
        if weight[key] is None or weight[key] > budget[key]
    ]
