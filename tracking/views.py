"""Pages of the live map: the customer's map and the vendor's on-shift page (an installable web
app with a service worker)."""

import json

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from customers.selectors import favourites_to_notify, usual_for_today
from vendors.selectors import products_active

from .models import VendorPosition

DEFAULT_CENTRE = (37.5560, 126.9160)  # Mapo-gu, Seoul


@require_GET
def map_page(request: HttpRequest) -> HttpResponse:
    """The live map. 'Near me' uses the browser's location in the page only (never sent to us);
    a logged-in customer may centre on a saved address instead."""
    addresses: list[dict] = []
    favourites: list[dict] = []
    usual: list = []
    customer = getattr(request.user, "customer", None) if request.user.is_authenticated else None
    if customer is not None:
        addresses = [
            {"label": a.label, "lat": a.lat, "lng": a.lng} for a in customer.addresses.all()[:10]
        ]
        favourites = _favourites_to_tell(customer)
        usual = usual_for_today(customer, timezone.now())
    config = {
        "ws": "/ws/map/",
        "centre": list(DEFAULT_CENTRE),
        "zoom": 15,
        "tiles": settings.MAP_TILE_URL,
        "attribution": settings.MAP_TILE_ATTRIBUTION,
        "addresses": addresses,
        "missUrl": reverse("api-insights-misses"),
        # Favourite carts to tell the customer about when near (static/js/map.js), by map id.
        "favourites": favourites,
        "nearM": settings.FAVOURITE_NEAR_M,
    }
    products = [{"id": p.pk, "name": p.name} for p in products_active()]
    i18n = {
        "connecting": _("Connecting…"),
        "reconnecting": _("Connection lost, reconnecting…"),
        "zoomIn": _("Zoom in to see carts."),
        "tilesDown": _("Map images could not load; carts and the list still work."),
        "noGeo": _("Your browser could not tell us where you are."),
        "moving": _("Moving"),
        "stationary": _("Standing still"),
        "stale": _("Not heard from for a while"),
        "dismiss": _("Dismiss"),
    }
    return render(
        request,
        "tracking/map.html",
        {"map_config": config, "products": products, "map_i18n": i18n, "usual": usual},
    )


def _favourites_to_tell(customer) -> list[dict]:
    """The favourites with "tell me when it is near" on: the map's id (the slug), the name, and
    the start of the cart's current shift (the page tells once per cart and shift)."""
    rows = favourites_to_notify(customer=customer)
    shifts = dict(
        VendorPosition.objects.filter(
            vendor_id__in=[f.vendor_id for f in rows], on_shift=True
        ).values_list("vendor_id", "shift_started_at")
    )
    return [
        {
            "id": f.vendor.slug,
            "name": f.vendor.name,
            "shift": started.isoformat() if (started := shifts.get(f.vendor_id)) else "",
        }
        for f in rows
    ]


def _vendor_or_none(request: HttpRequest):
    return getattr(request.user, "vendor", None) if hasattr(request.user, "vendor") else None


@login_required
@require_GET
def shift_page(request: HttpRequest) -> HttpResponse:
    vendor = _vendor_or_none(request)
    if vendor is None:
        return redirect("vendors:apply")
    pos = getattr(vendor, "position", None) if hasattr(vendor, "position") else None
    config = {
        "ws": "/ws/vendor/location/",
        "shiftUrl": reverse("api-shift"),
        "batchUrl": reverse("api-ping-batch"),
        "trackUrl": reverse("api-own-track"),
        "swUrl": reverse("tracking:sw"),
        "onShift": bool(pos and pos.on_shift),
        "canSell": vendor.can_sell,
        "tiles": settings.MAP_TILE_URL,
        "attribution": settings.MAP_TILE_ATTRIBUTION,
        "centre": [vendor.home_lat, vendor.home_lng],
        "timeZone": settings.TIME_ZONE,  # times on the page in Korea time, wherever the phone is
    }
    i18n = {
        "online": _("Connected"),
        "offline": _("Offline: pings are kept on this phone and sent when the connection is back"),
        "connecting": _("Connecting…"),
        "onShift": _("You are on shift. Customers see the area you are in."),
        "offShift": _("You are off shift. Nobody sees you on the map."),
        "goOn": _("Go on shift"),
        "goOff": _("Go off shift"),
        "lastPing": _("Last location sent"),
        "queued": _("waiting to send"),
        # One sentence per reason the phone gave (GeolocationPositionError codes 1, 2 and 3).
        "noGeo": _("This browser cannot share your location. Try another browser on this phone."),
        "geoDenied": _(
            "Location is not allowed for this site. Allow it in the browser's site settings "
            "(the icon beside the address), then reload this page."
        ),
        "geoUnavailable": _(
            "Your phone cannot find where you are right now (no GPS or network fix). "
            "Keep this page open: it keeps trying."
        ),
        "geoTimeout": _("Still looking for your location… Keep this page open."),
        "rejected": _("Location not accepted"),
        "error": _("Something went wrong; try again."),
        "never": _("not yet"),
    }
    return render(
        request,
        "tracking/shift.html",
        {"vendor": vendor, "shift_config": config, "shift_i18n": i18n},
    )


@require_GET
def manifest(request: HttpRequest) -> JsonResponse:
    data = {
        "name": _("O2O cart"),
        "short_name": _("My cart"),
        "start_url": reverse("tracking:shift"),
        "scope": reverse("tracking:shift"),
        "display": "standalone",
        "background_color": "#f6f7f8",
        "theme_color": "#0b7a53",
        "icons": [
            {"src": static("img/icon-192.png"), "sizes": "192x192", "type": "image/png"},
            {"src": static("img/icon-512.png"), "sizes": "512x512", "type": "image/png"},
        ],
    }
    response = JsonResponse(data, json_dumps_params={"ensure_ascii": False})
    response["Content-Type"] = "application/manifest+json"
    return response


SERVICE_WORKER = """
// Caches a vendor page's shell so it opens with a bad connection (the on-shift page, the round);
// what the vendor does offline is queued by the page itself (localStorage) and sent when back.
const CACHE = "__CACHE__";
const SHELL = __SHELL__;
self.addEventListener("install", (e) => {
  e.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});
self.addEventListener("activate", (e) => {
  e.waitUntil(caches.keys().then((keys) => Promise.all(
    // Only this worker's older caches: another page's worker keeps its own.
    keys.filter((k) => k !== CACHE && k.split("-v")[0] === CACHE.split("-v")[0])
      .map((k) => caches.delete(k)))).then(() => self.clients.claim()));
});
self.addEventListener("fetch", (e) => {
  const req = e.request;
  if (req.method !== "GET") return;
  const url = new URL(req.url);
  if (url.origin !== location.origin || url.pathname.startsWith("/api/")) return;
  // Network first (fresh page when online), the cached shell when not.
  e.respondWith(fetch(req).then((res) => {
    if (res.ok && SHELL.includes(url.pathname)) {
      const copy = res.clone();
      caches.open(CACHE).then((c) => c.put(req, copy));
    }
    return res;
  }).catch(() => caches.match(req)));
});
"""


def service_worker_source(cache: str, shell: list[str]) -> str:
    return SERVICE_WORKER.replace("__CACHE__", cache).replace("__SHELL__", json.dumps(shell))


@never_cache
@require_GET
def service_worker(request: HttpRequest) -> HttpResponse:
    shell = [
        reverse("tracking:shift"),
        static("css/app.css"),
        static("js/app.js"),
        static("js/shift.js"),
        static("vendor/leaflet/leaflet.js"),
        static("vendor/leaflet/leaflet.css"),
    ]
    response = HttpResponse(
        service_worker_source("o2o-shift-v2", shell), content_type="text/javascript"
    )
    response["Service-Worker-Allowed"] = reverse("tracking:shift")
    return response
