"""Form helpers shared by the apps' views."""

from django import forms
from django.core.exceptions import ValidationError


def add_service_error(form: forms.Form, exc: ValidationError) -> None:
    """Put a service's ValidationError on the form: on the field it names where the form has that
    field, above the form otherwise (a model field the form does not show, such as a unique
    `user` or `slug`, must not make `add_error` raise)."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)
