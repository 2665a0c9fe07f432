"""Account API, for native apps: sign up (the signup page's service, with the same limit on
attempts) and log out (revoke the token ObtainTokenApi gave)."""

from django.conf import settings
from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import Throttled
from rest_framework.response import Response
from rest_framework.views import APIView

from o2o.accounts.throttle import over_limit, over_limit_message

from .services import customer_signup


class SignupInSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(trim_whitespace=False, write_only=True, max_length=128)
    name = serializers.CharField(max_length=100, required=False, allow_blank=True)


class SignupOutSerializer(serializers.Serializer):
    email = serializers.EmailField()
    token = serializers.CharField(help_text="Send it as `Authorization: Token <token>`.")


class SignupApi(APIView):
    """Create a customer account (the signup page's service) and log in: the answer carries the
    account's token. Limited per client address and per e-mail address, like the page."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        request=SignupInSerializer,
        responses={
            201: SignupOutSerializer,
            400: OpenApiResponse(
                description="Invalid input, a weak password, or the e-mail address is taken."
            ),
        },
        auth=[],
        tags=["auth"],
    )
    def post(self, request):
        email = request.data.get("email") if hasattr(request.data, "get") else None
        if over_limit(
            request._request, scope="signup", email=email if isinstance(email, str) else None
        ):
            raise Throttled(wait=settings.FORM_LIMIT_WINDOW_S, detail=over_limit_message())
        body = SignupInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        try:
            profile = customer_signup(
                email=data["email"], password=data["password"], name=data.get("name", "")
            )
        except ValidationError as exc:
            if not hasattr(exc, "error_dict"):  # validate_password's messages
                raise ValidationError({"password": exc.messages}) from exc
            raise
        token, _created = Token.objects.get_or_create(user=profile.user)
        return Response(
            SignupOutSerializer({"email": profile.user.email, "token": token.key}).data,
            status=status.HTTP_201_CREATED,
        )


class RevokeTokenApi(APIView):
    """Log out: the account's token stops working (logging in again gives a new one)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=None,
        responses={204: OpenApiResponse(description="Logged out.")},
        tags=["auth"],
    )
    def post(self, request):
        Token.objects.filter(user=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
