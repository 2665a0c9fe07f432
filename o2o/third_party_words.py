"""Words that installed apps show in our admin but whose own Korean catalogues lack (or leave in
English): django-axes and django-celery-beat model names. Listed here so that `make messages`
extracts them into our catalogue (locale/, which comes first), where they get their Korean.
Nothing imports this module; the strings must stay exactly as the apps spell them."""

from django.utils.translation import gettext_noop

THIRD_PARTY_WORDS = (
    # django-axes (axes/models.py): no Korean catalogue
    gettext_noop("access failure"),
    gettext_noop("access failures"),
    gettext_noop("access attempt"),
    gettext_noop("access attempts"),
    gettext_noop("access attempt expiration"),
    gettext_noop("access attempt expirations"),
    gettext_noop("access log"),
    gettext_noop("access logs"),
    # django-celery-beat (django_celery_beat/models.py): its Korean catalogue keeps the English
    gettext_noop("solar event"),
    gettext_noop("solar events"),
    gettext_noop("interval"),
    gettext_noop("intervals"),
    gettext_noop("clocked"),
    gettext_noop("crontab"),
    gettext_noop("crontabs"),
    gettext_noop("periodic task track"),
    gettext_noop("periodic task tracks"),
    gettext_noop("periodic task"),
    gettext_noop("periodic tasks"),
)
