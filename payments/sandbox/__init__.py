"""A payment provider's test mode that ships with the project: an API at /sandbox/api/v1/ that
honours idempotency keys, a hosted card page with test cards, and signed webhooks sent with retries.

It is a separate system as far as the platform is concerned: the platform reaches it only over HTTP
through payments.gateways.sandbox, and the two share no models.
"""
