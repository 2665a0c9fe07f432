"""The hosted card page a customer is sent to (checkout_url), and its challenge step. Thin: the
form checks what was typed, services change the intent, then the browser goes back to the shop."""

from urllib.parse import urlencode, urlsplit, urlunsplit

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.middleware.csrf import get_token
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from . import services, vault
from .forms import CardForm
from .models import SandboxIntent, SandboxSetupSession
from .services import NUL, TEST_CARDS, SandboxError

S = SandboxIntent.Status


def render(request: HttpRequest, template: str, context: dict, status: int = 200) -> HttpResponse:
    """The provider's own pages: none of the platform's context processors (its user, its menus),
    just what the page needs."""
    context = {
        **context,
        "csrf_token": get_token(request),
        "this_page": request.get_full_path(),
        "csp_nonce": request.csp_nonce,
    }
    response = HttpResponse(render_to_string(template, context), status=status)
    if intent := context.get("intent"):
        # Content-Security-Policy's form-action also governs where a post is redirected: the card
        # page's forms end at the shop (return_url), which may be another origin than this page.
        shop = urlsplit(intent.return_url)
        response._csp_update = {"form-action": [f"{shop.scheme}://{shop.netloc}"]}  # django-csp
    return response


def _intent(intent_id: str) -> SandboxIntent:
    try:
        if NUL in intent_id:  # no intent's id has one (and PostgreSQL can't be asked about it)
            raise SandboxIntent.DoesNotExist
        return SandboxIntent.objects.get(pk=intent_id)
    except SandboxIntent.DoesNotExist as exc:
        raise Http404 from exc


def return_to_shop(intent: SandboxIntent) -> str:
    """return_url with intent=<id> added to its query."""
    parts = urlsplit(intent.return_url)
    query = (parts.query + "&" if parts.query else "") + urlencode({"intent": intent.id})
    return urlunsplit(parts._replace(query=query))


def _back_to_shop(intent: SandboxIntent) -> HttpResponseRedirect:
    # The shop's own URL, given by the merchant over the authenticated API: not an open redirect.
    return HttpResponseRedirect(return_to_shop(intent))


def _test_cards() -> list[tuple[str, str]]:
    labels = {
        "approve": _("approved"),
        "slow": _("approved, but the shop's next check of the payment is slow"),
        "challenge": _("asks the card holder to confirm (like 3-D Secure)"),
        "card_declined": _("declined"),
        "insufficient_funds": _("declined: insufficient funds"),
        "try_again_later": _("declined for now: try again later"),
        "authentication_required": _(
            "approved; once saved, payments without the card holder need their confirmation"
        ),
    }
    return [
        (
            " ".join(number[i : i + 4] for i in range(0, 16, 4)),
            labels[c.off_session or c.failure_code or c.outcome],
        )
        for number, c in TEST_CARDS.items()
    ]


def _decline_text(code: str) -> str:
    """Why the last card was declined, for the card holder."""
    return {
        "card_declined": _("Your card was declined."),
        "insufficient_funds": _("Your card has insufficient funds."),
        "authentication_failed": _("The payment was not confirmed with your bank."),
    }.get(code, _("Your card was declined."))


def _closed(request: HttpRequest, intent: SandboxIntent) -> HttpResponse:
    return render(
        request,
        "sandbox/closed.html",
        {
            "intent": intent,
            "back_url": return_to_shop(intent),
            "ran_out": intent.status == S.FAILED and intent.failure_code == "expired",
        },
        status=409 if request.method == "POST" else 200,
    )


def _fresh(intent_id: str) -> SandboxIntent:
    """The intent, failed first if its time to pay is over."""
    intent = _intent(intent_id)
    if services.intent_expire_if_due(intent_id=intent.id):
        intent = _intent(intent_id)
    return intent


@never_cache
@require_http_methods(["GET", "POST"])
def pay(request: HttpRequest, intent_id: str) -> HttpResponse:
    intent = _fresh(intent_id)
    if intent.status == S.REQUIRES_ACTION:
        return redirect("sandbox:challenge", intent_id=intent.id)
    if intent.status != S.REQUIRES_PAYMENT_METHOD:
        return _closed(request, intent)
    form = CardForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            intent = services.card_submit(intent_id=intent.id, number=form.cleaned_data["number"])
        except SandboxError:
            return _closed(request, _fresh(intent_id))  # paid meanwhile, or the time ran out
        if intent.status == S.REQUIRES_ACTION:
            return redirect("sandbox:challenge", intent_id=intent.id)
        if intent.status == S.REQUIRES_PAYMENT_METHOD:
            # Declined: the page again, saying why, for another card (a reload sends nothing).
            return redirect("sandbox:pay", intent_id=intent.id)
        return _back_to_shop(intent)
    return render(
        request,
        "sandbox/pay.html",
        {
            "intent": intent,
            "form": form,
            "declined": _decline_text(intent.failure_code) if intent.failure_code else "",
            "test_cards": _test_cards(),
            "back_url": return_to_shop(intent),
        },
        status=400 if form.is_bound else 200,
    )


@never_cache
@require_http_methods(["GET", "POST"])
def challenge(request: HttpRequest, intent_id: str) -> HttpResponse:
    intent = _fresh(intent_id)
    if intent.status != S.REQUIRES_ACTION:
        return _closed(request, intent)
    if request.method == "POST":
        decision = request.POST.get("decision")
        if decision in ("approve", "fail"):
            try:
                intent = services.challenge_resolve(
                    intent_id=intent.id, approve=decision == "approve"
                )
            except SandboxError:
                return _closed(request, _fresh(intent_id))
            if intent.status == S.REQUIRES_PAYMENT_METHOD:  # not confirmed: try another card
                return redirect("sandbox:pay", intent_id=intent.id)
            return _back_to_shop(intent)
    return render(
        request,
        "sandbox/challenge.html",
        {"intent": intent},
        status=400 if request.method == "POST" else 200,
    )


# --- the setup page: save a card, charge nothing ---------------------------------------------------


def _setup_back(session: SandboxSetupSession) -> str:
    """return_url with setup_session=<id> added to its query."""
    parts = urlsplit(session.return_url)
    query = (parts.query + "&" if parts.query else "") + urlencode({"setup_session": session.id})
    return urlunsplit(parts._replace(query=query))


@never_cache
@require_http_methods(["GET", "POST"])
def setup(request: HttpRequest, setup_id: str) -> HttpResponse:
    """The hosted page of a setup session: the card holder saves a test card for later payments.
    Saved (or already saved): back to the merchant's return_url?setup_session=<id>."""
    try:
        session = vault.setup_get(setup_id=setup_id)
    except SandboxError as exc:
        raise Http404 from exc
    if session.status != SandboxSetupSession.Status.OPEN:
        return HttpResponseRedirect(_setup_back(session))
    form = CardForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            session = vault.setup_complete(
                setup_id=session.id,
                number=form.cleaned_data["number"],
                expiry=form.cleaned_data["expiry"],
            )
        except SandboxError:
            session = vault.setup_get(setup_id=setup_id)  # saved meanwhile (another tab)
        return HttpResponseRedirect(_setup_back(session))
    response = render(
        request,
        "sandbox/setup.html",
        {
            "form": form,
            "test_cards": _test_cards(),
            "back_url": _setup_back(session),
        },
        status=400 if form.is_bound else 200,
    )
    shop = urlsplit(session.return_url)
    response._csp_update = {"form-action": [f"{shop.scheme}://{shop.netloc}"]}  # type: ignore[attr-defined]
    return response
