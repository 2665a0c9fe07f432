"""The round page's stop cards, built in Python: a 400-stop round is ~10,000 template nodes, which
Django's engine renders in ~50 ms; these strings take a few. The markup is the page's
(templates/subscriptions/round.html documents the form it sits in); every value is escaped."""

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from .round import Stop


def stop_card(number: int, stop: Stop, words: dict[str, str]) -> str:
    oid = stop.order_id
    head = (
        f'<span class="badge">{escape(words["regular"])}</span>'
        if stop.subscription_id
        else f'<span class="badge other">{escape(words["order"])} #{oid}</span>'
    )
    if stop.distance_m:
        head += f" · {stop.distance_m} m"
    if stop.by_text:
        head += f" · {escape(stop.by_text)}"
    lines = "".join(f"<li>{escape(name)} × {qty}</li>" for name, qty in stop.lines)
    parts = [
        f'<li class="card stop" data-order="{oid}" data-testid="stop-{oid}">',
        f'<div class="stop-head"><span class="stop-no" aria-hidden="true">{number}</span><div>',
        f'<p class="stop-address">{escape(stop.address)}</p>',
        f'<p class="muted small">{head}</p></div></div>',
        f'<ul class="stop-lines">{lines}</ul>',
    ]
    if stop.note:
        parts.append(f'<p class="stop-note">{escape(words["note"])} {escape(stop.note)}</p>')
    # A one-off order ("" here) is refunded when nobody is at home, as the "refund" choice.
    policy = words[stop.not_at_home if stop.not_at_home in ("door", "tomorrow") else "refund"]
    parts.append(f'<p class="muted small">{escape(words["if_not_home"])} {escape(policy)}</p>')
    if stop.needs_code:
        parts.append(
            f'<label for="code-{oid}">{escape(words["code"])}</label>'
            f'<input id="code-{oid}" name="code-{oid}" inputmode="numeric" autocomplete="off" '
            f'pattern="[0-9]*" maxlength="8" class="code-input">'
        )
    if stop.wellbeing:
        parts.append(
            f'<fieldset class="wellbeing"><legend>{escape(words["wellbeing"])}</legend>'
            f'<label><input type="radio" name="wellbeing-{oid}" value="well"> '
            f"{escape(words['well'])}</label>"
            f'<label><input type="radio" name="wellbeing-{oid}" value="concern"> '
            f"{escape(words['concern'])}</label>"
            f'<label><input type="checkbox" name="uncollected-{oid}"> '
            f"{escape(words['uncollected'])}</label>"
            f'<label for="note-{oid}">{escape(words["note_optional"])}</label>'
            f'<input id="note-{oid}" name="note-{oid}" maxlength="200"></fieldset>'
        )
    parts.append(
        f'<div class="stop-actions"><button class="btn primary" type="submit" name="tap" '
        f'value="delivered:{oid}">{escape(words["delivered"])}</button>'
        f'<button class="btn" type="submit" name="tap" value="not_home:{oid}">'
        f"{escape(words['not_home'])}</button></div>"
        '<p class="field-error stop-error" role="alert"></p></li>'
    )
    return "".join(parts)


def stops_html(stops: list[Stop], words: dict[str, str]) -> SafeString:
    return mark_safe(  # noqa: S308 - every value above went through escape()
        "\n".join(stop_card(n, stop, words) for n, stop in enumerate(stops, start=1))
    )
