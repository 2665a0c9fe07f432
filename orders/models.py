"""Cart, orders, lines, events and subscriptions. Built by the order-and-pay work."""
