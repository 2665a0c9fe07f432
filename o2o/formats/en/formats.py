"""English date and time formats (Django's format localization, settings.FORMAT_MODULE_PATH): one
long and one short form of each, used by every page, so dates never mix styles. 24-hour times, as
in Korea, where the carts run."""

DATE_FORMAT = "M j, Y"
SHORT_DATE_FORMAT = "M j"
DATETIME_FORMAT = "M j, Y, H:i"
SHORT_DATETIME_FORMAT = "M j, H:i"
TIME_FORMAT = "H:i"
MONTH_DAY_FORMAT = "M j"
YEAR_MONTH_FORMAT = "F Y"
FIRST_DAY_OF_WEEK = 1  # Monday, as the settlement weeks
