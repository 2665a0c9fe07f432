"""API tokens for native apps and partners: trade an e-mail address and password for a token."""

from django.contrib.auth import authenticate
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers
from rest_framework.authtoken.models import Token
from rest_framework.response import Response
from rest_framework.views import APIView


class TokenInSerializer(serializers.Serializer):
    email = serializers.EmailField()
    password = serializers.CharField(trim_whitespace=False, write_only=True)

    def validate(self, data: dict) -> dict:
        user = authenticate(
            request=self.context.get("request"), email=data["email"], password=data["password"]
        )
        if user is None:
            raise serializers.ValidationError(
                _("Unable to log in with that e-mail address and password."), code="authorization"
            )
        data["user"] = user
        return data


class TokenOutSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send it as `Authorization: Token <token>`.")


class ObtainTokenApi(APIView):
    """Log in with e-mail and password; the same token is returned until it is revoked."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        request=TokenInSerializer, responses={200: TokenOutSerializer}, auth=[], tags=["auth"]
    )
    def post(self, request):
        body = TokenInSerializer(data=request.data, context={"request": request._request})
        body.is_valid(raise_exception=True)
        token, _created = Token.objects.get_or_create(user=body.validated_data["user"])
        return Response(TokenOutSerializer({"token": token.key}).data)
