"""Korean date and time formats (Django's format localization, settings.FORMAT_MODULE_PATH): one
long and one short form of each, used by every page, so dates never mix styles."""

DATE_FORMAT = "Y년 n월 j일"
SHORT_DATE_FORMAT = "n월 j일"
DATETIME_FORMAT = "Y년 n월 j일 H:i"
SHORT_DATETIME_FORMAT = "n월 j일 H:i"
TIME_FORMAT = "H:i"
MONTH_DAY_FORMAT = "n월 j일"
YEAR_MONTH_FORMAT = "Y년 n월"
FIRST_DAY_OF_WEEK = 1  # Monday, as the settlement weeks
