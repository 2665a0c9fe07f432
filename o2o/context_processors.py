from django.http import HttpRequest


def roles(request: HttpRequest) -> dict:
    """Which navigation to show: customer, vendor (by state), staff."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_role": "anonymous", "my_vendor": None}
    vendor = getattr(user, "vendor", None) if hasattr(user, "vendor") else None
    return {"nav_role": "vendor" if vendor else "customer", "my_vendor": vendor}
