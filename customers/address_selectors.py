"""Reads of a customer's saved addresses, shared by the checkout page and the API."""

from django.db.models import QuerySet

from .models import Address, CustomerProfile


def addresses_of(*, customer: CustomerProfile | None) -> QuerySet[Address]:
    """The customer's addresses, the default first (nothing for a user with no profile)."""
    if customer is None:
        return Address.objects.none()
    return Address.objects.filter(customer=customer).order_by("-is_default", "label", "pk")


def address_of(*, customer: CustomerProfile | None, address_id: int) -> Address:
    """One of the customer's addresses; Address.DoesNotExist for anyone else's."""
    return addresses_of(customer=customer).get(pk=address_id)
