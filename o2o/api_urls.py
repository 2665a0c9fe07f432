"""Every app's API under /api/."""

from django.urls import include, path, re_path

from counter import api as counter_api
from customers import account_api, address_api, favourite_api
from customers import api as customers_api
from insights import api as insights_api
from insights import miss_api, staff_api
from o2o.accounts.api import ObtainTokenApi
from orders import api as orders_api
from orders import reorder_api
from partners import point_api
from payments import api as payments_api
from subscriptions import api as subscriptions_api
from subscriptions import round_api
from tracking import api as tracking_api
from vendors import api as vendors_api

urlpatterns = [
    path("auth/token/", ObtainTokenApi.as_view(), name="api-token"),
    path("auth/token/revoke/", account_api.RevokeTokenApi.as_view(), name="api-token-revoke"),
    path("auth/signup/", account_api.SignupApi.as_view(), name="api-signup"),
    path("vendors/", vendors_api.VendorListApi.as_view(), name="api-vendors"),
    re_path(r"^vendors/nearby/?$", tracking_api.NearbyApi.as_view(), name="api-vendors-nearby"),
    path("tracking/shift/", tracking_api.ShiftApi.as_view(), name="api-shift"),
    path("tracking/pings/", tracking_api.PingBatchApi.as_view(), name="api-ping-batch"),
    path("tracking/me/", tracking_api.OwnTrackApi.as_view(), name="api-own-track"),
    path("vendors/me/stock/", vendors_api.OwnStockApi.as_view(), name="api-own-stock"),
    path("vendors/me/lots/", vendors_api.OwnLotsApi.as_view(), name="api-own-lots"),
    path(
        "vendors/me/lots/<int:lot_id>/correct/",
        vendors_api.OwnLotCorrectApi.as_view(),
        name="api-own-lot-correct",
    ),
    path(
        "vendors/me/lots/<int:lot_id>/write-off/",
        vendors_api.OwnLotWriteOffApi.as_view(),
        name="api-own-lot-write-off",
    ),
    path("vendors/apply/", vendors_api.VendorApplyApi.as_view(), name="api-vendor-apply"),
    path("vendors/me/hours/", vendors_api.OwnHoursApi.as_view(), name="api-own-hours"),
    path("vendor/round/", round_api.RoundApi.as_view(), name="api-round"),
    path("vendor/round/actions/", round_api.RoundActionsApi.as_view(), name="api-round-actions"),
    path("vendor/round/tomorrow/", round_api.RoundTomorrowApi.as_view(), name="api-round-tomorrow"),
    path("insights/vendor/", insights_api.VendorInsightApi.as_view(), name="api-insights-vendor"),
    path(
        "insights/vendor/load/",
        insights_api.VendorLoadApi.as_view(),
        name="api-insights-vendor-load",
    ),
    path("vendors/<slug:slug>/", vendors_api.VendorDetailApi.as_view(), name="api-vendor"),
    path("pickup-points/", orders_api.PickupPointsApi.as_view(), name="api-pickup-points"),
    path("me/addresses/", address_api.AddressesApi.as_view(), name="api-addresses"),
    path(
        "me/addresses/<int:address_id>/",
        address_api.AddressDetailApi.as_view(),
        name="api-address",
    ),
    path("me/usual/", favourite_api.UsualApi.as_view(), name="api-usual"),
    path("favourites/", favourite_api.FavouritesApi.as_view(), name="api-favourites"),
    path(
        "favourites/<slug:slug>/",
        favourite_api.FavouriteDetailApi.as_view(),
        name="api-favourite",
    ),
    path("products/", vendors_api.ProductListApi.as_view(), name="api-products"),
    path("subscriptions/", subscriptions_api.SubscriptionsApi.as_view(), name="api-subscriptions"),
    path(
        "subscriptions/<int:subscription_id>/",
        subscriptions_api.SubscriptionDetailApi.as_view(),
        name="api-subscription",
    ),
    path(
        "subscriptions/<int:subscription_id>/pause/",
        subscriptions_api.SubscriptionPauseApi.as_view(),
        name="api-subscription-pause",
    ),
    path(
        "subscriptions/<int:subscription_id>/resume/",
        subscriptions_api.SubscriptionResumeApi.as_view(),
        name="api-subscription-resume",
    ),
    path(
        "subscriptions/<int:subscription_id>/skip/",
        subscriptions_api.SubscriptionSkipApi.as_view(),
        name="api-subscription-skip",
    ),
    path(
        "subscriptions/<int:subscription_id>/preferences/",
        subscriptions_api.SubscriptionPreferencesApi.as_view(),
        name="api-subscription-preferences",
    ),
    path(
        "subscriptions/<int:subscription_id>/cancel/",
        subscriptions_api.SubscriptionCancelApi.as_view(),
        name="api-subscription-cancel",
    ),
    path(
        "wellbeing/requests/",
        subscriptions_api.WellbeingAskApi.as_view(),
        name="api-wellbeing-ask",
    ),
    path(
        "wellbeing/requests/<uuid:token>/",
        subscriptions_api.WellbeingAnswerApi.as_view(),
        name="api-wellbeing-answer",
    ),
    path("counter/orders/", counter_api.WalkupOrdersApi.as_view(), name="api-counter-orders"),
    path("counter/baskets/", counter_api.VendorBasketsApi.as_view(), name="api-counter-baskets"),
    path("orders/", orders_api.OrdersApi.as_view(), name="api-orders"),
    path("orders/<int:order_id>/", orders_api.OrderDetailApi.as_view(), name="api-order"),
    path(
        "orders/<int:order_id>/cancel/",
        orders_api.OrderCancelApi.as_view(),
        name="api-order-cancel",
    ),
    path(
        "orders/<int:order_id>/problem/",
        orders_api.OrderProblemApi.as_view(),
        name="api-order-problem",
    ),
    path("orders/<int:order_id>/pay/", orders_api.OrderPayApi.as_view(), name="api-order-pay"),
    path(
        "orders/<int:order_id>/reorder/",
        reorder_api.OrderReorderApi.as_view(),
        name="api-order-reorder",
    ),
    path(
        "orders/<int:order_id>/payment/refresh/",
        orders_api.OrderPaymentRefreshApi.as_view(),
        name="api-order-payment-refresh",
    ),
    path(
        "staff/orders/<int:order_id>/cancel/",
        orders_api.StaffOrderCancelApi.as_view(),
        name="api-staff-order-cancel",
    ),
    path(
        "staff/orders/<int:order_id>/expire/",
        orders_api.StaffOrderExpireApi.as_view(),
        name="api-staff-order-expire",
    ),
    path(
        "staff/orders/<int:order_id>/lines/<int:line_id>/refund/",
        orders_api.StaffOrderLineRefundApi.as_view(),
        name="api-staff-order-line-refund",
    ),
    path("vendor/orders/", orders_api.VendorOrdersApi.as_view(), name="api-vendor-orders"),
    path(
        "vendor/orders/scan/",
        orders_api.VendorHandOverApi.as_view(),
        name="api-vendor-order-hand-over-scan",
    ),
    path(
        "vendor/cash-sales/", orders_api.VendorCashSalesApi.as_view(), name="api-vendor-cash-sales"
    ),
    path(
        "vendor/cash-sales/<int:order_id>/undo/",
        orders_api.VendorCashSaleUndoApi.as_view(),
        name="api-vendor-cash-sale-undo",
    ),
    path(
        "vendor/orders/<int:order_id>/accept/",
        orders_api.VendorOrderAcceptApi.as_view(),
        name="api-vendor-order-accept",
    ),
    path(
        "vendor/orders/<int:order_id>/reject/",
        orders_api.VendorOrderRejectApi.as_view(),
        name="api-vendor-order-reject",
    ),
    path(
        "vendor/orders/<int:order_id>/depart/",
        orders_api.VendorOrderDepartApi.as_view(),
        name="api-vendor-order-depart",
    ),
    path(
        "vendor/orders/<int:order_id>/ready/",
        orders_api.VendorOrderReadyApi.as_view(),
        name="api-vendor-order-ready",
    ),
    path(
        "vendor/orders/<int:order_id>/hand-over/",
        orders_api.VendorOrderHandOverApi.as_view(),
        name="api-vendor-order-hand-over",
    ),
    path(
        "vendor/orders/<int:order_id>/cancel/",
        orders_api.VendorOrderCancelApi.as_view(),
        name="api-vendor-order-cancel",
    ),
    path(
        "vendor/orders/<int:order_id>/lines/<int:line_id>/short/",
        orders_api.VendorOrderLineShortApi.as_view(),
        name="api-vendor-order-line-short",
    ),
    # Money: a vendor's earnings and statements; finance exports for staff
    re_path(
        r"^me/cards/(?:(?P<card_id>[0-9]+)/)?$",
        payments_api.MyCardsApi.as_view(),
        name="api-my-cards",
    ),
    path("earnings/", payments_api.EarningsApi.as_view(), name="api-earnings"),
    path(
        "earnings/orders/<int:order_id>/",
        payments_api.EarningsOrderApi.as_view(),
        name="api-earnings-order",
    ),
    path("statements/", payments_api.StatementsApi.as_view(), name="api-statements"),
    path(
        "statements/<int:settlement_id>/",
        payments_api.StatementApi.as_view(),
        name="api-statement",
    ),
    re_path(
        r"^statements/(?P<settlement_id>[0-9]+)\.(?P<format>csv|pdf)$",
        payments_api.StatementApi.as_view(),
        name="api-statement-download",
    ),
    path(
        "finance/journal.csv",
        payments_api.JournalExportApi.as_view(),
        name="api-finance-journal",
    ),
    path("finance/daily/", payments_api.DailyTotalsApi.as_view(), name="api-finance-daily"),
    path("payouts/", payments_api.PayoutsApi.as_view(), name="api-payouts"),
    path(
        "staff/discrepancies/",
        payments_api.DiscrepanciesApi.as_view(),
        name="api-staff-discrepancies",
    ),
    path(
        "staff/discrepancies/<int:discrepancy_id>/resolve/",
        payments_api.DiscrepancyResolveApi.as_view(),
        name="api-staff-discrepancy-resolve",
    ),
    path("staff/adjustments/", payments_api.AdjustmentsApi.as_view(), name="api-staff-adjustments"),
    path("partner/", include("partners.api_urls")),
    path("point/orders/", point_api.PointOrdersApi.as_view(), name="api-point-orders"),
    path(
        "point/orders/<int:order_id>/collect/",
        point_api.PointOrderCollectApi.as_view(),
        name="api-point-order-collect",
    ),
    path("geocode/", customers_api.GeocodeApi.as_view(), name="api-geocode"),
    path("insights/misses/", miss_api.MissBeaconApi.as_view(), name="api-insights-misses"),
    path("insights/demand/", staff_api.DemandApi.as_view(), name="api-insights-demand"),
]
