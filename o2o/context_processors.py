from django.http import HttpRequest

# The roles a person can hold, each a one-to-one from the user: vendors.Vendor ("vendor") and
# partners.PointStaff ("point_staff").
ROLE_RELATIONS = ("vendor", "point_staff")


def _load_role_relations(user) -> None:
    """Both role relations in one query, put in the user's own caches so that later
    `user.vendor` / `hasattr(user, "point_staff")` anywhere in the request cost nothing."""
    user_model = user._meta.model  # request.user is a lazy proxy: type() would be the proxy
    vendor_relation = user_model.vendor.related
    if vendor_relation.is_cached(user) and vendor_relation.get_cached_value(user) is not None:
        return  # a vendor: the role is known, a partner role would not change it
    missing = [
        name
        for name in ROLE_RELATIONS
        if hasattr(user_model, name) and not getattr(user_model, name).related.is_cached(user)
    ]
    if not missing:
        return
    fetched = user_model.objects.select_related(*missing).filter(pk=user.pk).first()
    for name in missing:
        value = getattr(fetched, name, None) if fetched is not None else None
        getattr(user_model, name).related.set_cached_value(user, value)


def roles(request: HttpRequest) -> dict:
    """Which navigation to show. One role per person, the one their work comes from: a vendor
    (by state: pending vendors too), a pickup point's partner, staff, or a customer. Staff who
    are also a vendor or a partner keep that role's navigation and find Admin under "More"."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_role": "anonymous", "my_vendor": None}
    _load_role_relations(user)
    vendor = getattr(user, "vendor", None)
    if vendor is not None:
        role = "vendor"
    elif getattr(user, "point_staff", None) is not None:  # partners.PointStaff
        role = "partner"
    elif user.is_staff:
        role = "staff"
    else:
        role = "customer"
    return {"nav_role": role, "my_vendor": vendor}
