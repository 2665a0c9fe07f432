from django.apps import AppConfig


class O2OConfig(AppConfig):
    """The project package as an app: shared commands and pieces, no models."""

    name = "o2o"
    verbose_name = "O2O"
