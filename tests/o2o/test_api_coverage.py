"""Every page action has an API counterpart (issue 14, item 15): a native app can do whatever a
page does. The pages that take a POST are found by walking the URL configuration (outside /api/
and Django admin) and reading each view's accepted methods; each must appear in PAGE_ACTIONS,
naming the API endpoints that do the same through the same service, or the reason none is needed.
A new page that takes a POST fails here until its endpoint (or its reason) is added."""

import inspect

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.views.generic import RedirectView


class NoApi(str):
    """Why a page action needs no endpoint of its own."""


PAGE_ACTIONS: dict[str, tuple[str, ...] | NoApi] = {
    # accounts
    "signup": ("api-signup",),
    "login": ("api-token",),
    "logout": ("api-token-revoke",),
    "password_reset": NoApi("the e-mailed link opens the web page; the app links to it"),
    "password_reset_confirm": NoApi("reached from the e-mailed link, in the browser"),
    "password_change": NoApi("left to the web page for now (reported as not done)"),
    "set_language": NoApi("the API speaks the language of Accept-Language"),
    # customers: basket, checkout, own orders
    "orders:cart-add": NoApi("the basket lives in the app; POST /api/orders/ takes the lines"),
    "orders:cart-update": NoApi("the basket lives in the app"),
    "orders:cart-remove": NoApi("the basket lives in the app"),
    "orders:again": ("api-order-reorder", "api-orders"),
    "orders:checkout": ("api-orders", "api-addresses"),
    # customers: favourite carts
    "customers:favourite-set": ("api-favourites", "api-favourite"),
    "customers:favourite-notify": ("api-favourite",),
    "customers:favourite-stop": NoApi("the e-mail's signed link, opened in a browser or mail app"),
    "orders:pay": ("api-order-pay",),
    "orders:payment-refresh": ("api-order-payment-refresh",),
    "orders:cancel": ("api-order-cancel",),
    "orders:problem": ("api-order-problem",),
    # customers: subscriptions
    "subscriptions:new": ("api-subscriptions",),
    "subscriptions:action": (
        "api-subscription-pause",
        "api-subscription-resume",
        "api-subscription-skip",
        "api-subscription-cancel",
        "api-subscription-preferences",
    ),
    "subscriptions:wellbeing-ask": ("api-wellbeing-ask",),
    "subscriptions:wellbeing-answer": ("api-wellbeing-answer",),
    "round:tap": ("api-round-actions",),
    "counter:cart": ("api-counter-orders",),
    "counter:basket": ("api-counter-orders",),
    "counter:vendor-basket": ("api-counter-baskets",),
    # vendors
    "vendors:apply": ("api-vendor-apply",),
    "vendors:stock": ("api-own-stock",),
    "vendors:lots": ("api-own-lots", "api-own-lot-correct", "api-own-lot-write-off"),
    "vendors:hours": ("api-own-hours",),
    "orders:vendor-action": (
        "api-vendor-order-accept",
        "api-vendor-order-reject",
        "api-vendor-order-depart",
        "api-vendor-order-ready",
        "api-vendor-order-hand-over",
        "api-vendor-order-cancel",
        "api-vendor-order-line-short",
    ),
    "orders:vendor-scan": ("api-vendor-order-hand-over-scan", "api-vendor-order-hand-over"),
    "orders:vendor-cash": ("api-vendor-cash-sales",),
    "orders:vendor-cash-undo": ("api-vendor-cash-sale-undo",),
    # a pickup point's staff
    "partners:point": ("api-point-order-collect",),
    # staff
    "payments:adjustment-new": ("api-staff-adjustments",),
    "payments:cards": ("api-my-cards",),
    # machines, not people
    "payments:webhook": NoApi("the payment provider's callback, not a page"),
}
WRITES = {"post", "put", "patch", "delete"}
# Not ours to mirror: staff work in Django admin (its actions call the same services), and the
# sandbox is a stand-in for the payment provider (its card pages and its own API).
SKIPPED_NAMESPACES = {"admin", "sandbox"}


def _walk(patterns, prefix: str = "", namespace: str = ""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            ns = entry.namespace or ""
            if ns in SKIPPED_NAMESPACES:
                continue
            full_ns = f"{namespace}:{ns}" if namespace and ns else (ns or namespace)
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern), full_ns)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name
            yield prefix + str(entry.pattern), name, entry.callback


def _methods(view) -> set[str] | None:
    """The methods a view accepts: from a class-based view's handlers, or the method list of
    require_http_methods (require_GET/require_POST) found along its wrappers; None when unsure."""
    if hasattr(view, "view_class"):
        cls = view.view_class
        if issubclass(cls, RedirectView):
            return {"get"}  # it answers a POST with the same redirect: no action
        return {m for m in cls.http_method_names if hasattr(cls, m)}
    func = view
    while func is not None:
        code = getattr(func, "__code__", None)
        if code is not None and "request_method_list" in code.co_freevars:
            cell = func.__closure__[code.co_freevars.index("request_method_list")]
            return {m.lower() for m in cell.cell_contents}
        func = getattr(func, "__wrapped__", None)
    return None


def _inner(view):
    while hasattr(view, "__wrapped__"):
        view = view.__wrapped__
    return view


def _takes_post(view) -> bool:
    methods = _methods(view)
    if methods is not None:
        return "post" in methods
    # No method decorator: a view that reads request.POST or asks for POST takes one.
    source = inspect.getsource(_inner(view))
    return "request.POST" in source or '"POST"' in source


def page_actions() -> dict[str, str]:
    """Named page URLs (not /api/, not admin) whose view takes a POST: name -> route."""
    found = {}
    for route, name, view in _walk(get_resolver().url_patterns):
        if route.startswith("api/") or getattr(view, "cls", None) is not None:
            continue  # the API itself (DRF views)
        if _takes_post(view):
            assert name, f"the page {route} takes a POST but has no URL name"
            found[name] = route
    return found


def api_views() -> dict[str, object]:
    """Named API URLs -> their DRF view class."""
    return {
        name: view.cls
        for route, name, view in _walk(get_resolver().url_patterns)
        if route.startswith("api/") and name and getattr(view, "cls", None) is not None
    }


def test_the_walk_finds_the_known_page_actions():
    """The check below can fail: it finds the pages everyone knows take a POST."""
    found = page_actions()
    for name in ("orders:checkout", "orders:problem", "vendors:apply", "vendors:stock"):
        assert name in found
    # ...and not the pages that only show things.
    for name in ("orders:detail", "vendors:detail", "tracking:map", "payments:statements"):
        assert name not in found


def test_every_page_action_has_an_api_counterpart_or_a_reason():
    found = page_actions()
    missing = sorted(set(found) - set(PAGE_ACTIONS))
    assert not missing, (
        f"Pages that take a POST with no API counterpart: {missing}. Add the endpoint (calling the "
        "same service) and list it in PAGE_ACTIONS, or say there why none is needed."
    )
    stale = sorted(set(PAGE_ACTIONS) - set(found))
    assert not stale, f"PAGE_ACTIONS names pages that take no POST (any more): {stale}"


@pytest.mark.parametrize(
    "page,apis",
    [(page, apis) for page, apis in PAGE_ACTIONS.items() if not isinstance(apis, NoApi)],
)
def test_each_counterpart_is_an_api_endpoint_that_writes(page, apis):
    views = api_views()
    for api in apis:
        assert api in views, f"{page}: no API URL named {api}"
        assert WRITES & {m for m in views[api].http_method_names if hasattr(views[api], m)}, (
            f"{page}: {api} takes no write"
        )


def test_every_reason_says_something():
    for page, apis in PAGE_ACTIONS.items():
        if isinstance(apis, NoApi):
            assert len(apis) > 10, page
