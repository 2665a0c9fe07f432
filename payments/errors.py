"""What payments services raise. All are DomainErrors (ValidationErrors with a message for people),
so views and the API answer them with a 4xx and the message; PaymentUnavailable deserves a 503."""

from o2o.errors import Conflict, DomainError


class PaymentError(DomainError):
    """The payment action was refused."""


class InvalidTransition(Conflict, PaymentError):
    """The payment is not in a state that allows this action (it changed, or never could)."""


class PaymentRefused(PaymentError):
    """The provider refused the request (its code is in .code)."""


class PaymentUnavailable(PaymentError):
    """The provider did not answer in time, or could not be reached. Nothing was changed here;
    the same call may be made again (it is idempotent)."""


class WebhookInvalid(PaymentError):
    """A webhook whose signature is missing, forged or too old, or whose body makes no sense."""


class UnknownProvider(PaymentError):
    """No gateway of that name is configured."""
