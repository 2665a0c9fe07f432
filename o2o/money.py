"""Money: integer minor units with a currency beside them. No floats anywhere near money."""

from dataclasses import dataclass

# Digits after the decimal point per currency (ISO 4217). KRW has no minor unit: 1 = ₩1.
MINOR_UNITS = {"KRW": 0, "USD": 2, "EUR": 2, "JPY": 0}
SYMBOLS = {"KRW": "₩", "USD": "$", "EUR": "€", "JPY": "¥"}


@dataclass(frozen=True, slots=True)
class Money:
    amount: int
    currency: str = "KRW"

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise TypeError("Money.amount must be an int in minor units")
        if self.currency not in MINOR_UNITS:
            raise ValueError(f"unknown currency {self.currency!r}")

    def __add__(self, other: "Money") -> "Money":
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: "Money") -> "Money":
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def _same(self, other: "Money") -> None:
        if not isinstance(other, Money) or other.currency != self.currency:
            raise ValueError("can't mix currencies")

    def __str__(self) -> str:
        return format_money(self.amount, self.currency)


def format_money(amount: int, currency: str = "KRW") -> str:
    digits = MINOR_UNITS.get(currency, 2)
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**digits) if digits else (abs(amount), 0)
    text = f"{whole:,}" + (f".{frac:0{digits}d}" if digits else "")
    return f"{sign}{SYMBOLS.get(currency, currency + ' ')}{text}"


def basis_points_of(amount: int, bps: int) -> int:
    """amount × bps / 10 000, rounded half-up, in integers only."""
    if amount < 0 or bps < 0:
        raise ValueError("amount and bps must be non-negative")
    return (amount * bps + 5_000) // 10_000
