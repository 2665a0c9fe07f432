"""{% load order_refunds %}{% order_refund_summary order as money %}: the refunds of an order and
what the customer paid in the end (orders.receipts), for the order page and the receipt."""

from django import template

from orders.models import Order
from orders.receipts import OrderRefunds, order_refunds

register = template.Library()


@register.simple_tag
def order_refund_summary(order: Order) -> OrderRefunds:
    return order_refunds(order=order)
