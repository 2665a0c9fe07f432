from django.apps import AppConfig


class O2OConfig(AppConfig):
    """The project package as an app: shared commands and pieces, and the durable effects."""

    name = "o2o"
    verbose_name = "O2O"

    def ready(self) -> None:
        # Each app's effects.py registers the handlers of its effect kinds.
        from django.utils.module_loading import autodiscover_modules

        autodiscover_modules("effects")
