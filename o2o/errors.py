"""Domain errors raised by services; views and APIs turn them into 4xx with the message."""

from django.core.exceptions import ValidationError


class DomainError(ValidationError):
    """A business rule refused the action. Its message is for people."""


class NotAllowed(DomainError):
    """The actor may not do this (mapped to 403, or 404 where existence must not leak)."""


class Conflict(DomainError):
    """The state changed under the actor's feet (mapped to 409)."""


class Forbidden(DomainError):
    """The actor may see this but not do it (mapped to 403): say, staff without the permission."""
