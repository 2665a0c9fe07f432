from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from customers.views import signup
from o2o.accounts.views import LoginView, PasswordResetView
from o2o.error_views import page_not_found, server_error
from o2o.health import healthz
from o2o.language import set_language
from orders.handover_views import handover_link

admin.site.site_header = "O2O admin"
admin.site.site_title = "O2O admin"
# A database or service that does not answer is a 503; the API answers errors in its JSON shape.
handler500 = server_error
handler404 = page_not_found

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="tracking:map"), name="home"),
    path("healthz", healthz, name="healthz"),
    path("i18n/setlang/", set_language, name="set_language"),  # remembers a vendor's choice
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("accounts/signup/", signup, name="signup"),
    path("accounts/login/", LoginView.as_view(), name="login"),  # lands each role on its work
    path("accounts/password_reset/", PasswordResetView.as_view(), name="password_reset"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("vendors/", include("vendors.urls")),
    path("payments/", include("payments.urls")),
    path("sandbox/", include("payments.sandbox.urls")),
    path("orders/", include("orders.urls")),
    path("favourites/", include("customers.urls")),
    # The link in a customer's hand-over QR: short, so the QR stays easy to scan.
    path("o/h/<str:token>/", handover_link, name="handover-qr"),
    path("partner/", include("partners.urls")),
    path("subscriptions/", include("subscriptions.urls")),
    path("round/", include("subscriptions.round_urls")),
    # Before any "insights/" include: the staff demand page has its own namespace.
    path("insights/demand/", include("insights.staff_urls")),
    path("insights/", include("insights.urls")),
    path("", include("counter.urls")),
    path("", include("tracking.urls")),
    path("api/", include("o2o.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]

if settings.DEBUG or settings.EMBEDDED:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
