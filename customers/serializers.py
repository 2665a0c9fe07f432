"""Customer API shapes: one input and one output serializer per endpoint."""

from rest_framework import serializers

from .models import Address


class AddressOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = Address
        fields = [
            "id",
            "label",
            "line1",
            "line2",
            "postal_code",
            "lat",
            "lng",
            "cell",
            "is_default",
            "created_at",
        ]


class AddressCreateInSerializer(serializers.Serializer):
    label = serializers.CharField(  # type: ignore[assignment]  # the field, not Field.label
        max_length=40,
        required=False,
        allow_blank=True,
        default="",
        help_text="e.g. Home, Office (Home when left out)",
    )
    line1 = serializers.CharField(max_length=200)
    line2 = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    postal_code = serializers.CharField(max_length=10, required=False, allow_blank=True, default="")
    lat = serializers.FloatField(min_value=-90, max_value=90)
    lng = serializers.FloatField(min_value=-180, max_value=180)
    is_default = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Make it the default (the first address always is).",
    )


class AddressUpdateInSerializer(serializers.Serializer):
    """Only the fields sent change. `lat` and `lng` go together."""

    label = serializers.CharField(max_length=40, required=False, allow_blank=True)  # type: ignore[assignment]
    line1 = serializers.CharField(max_length=200, required=False)
    line2 = serializers.CharField(max_length=100, required=False, allow_blank=True)
    postal_code = serializers.CharField(max_length=10, required=False, allow_blank=True)
    lat = serializers.FloatField(min_value=-90, max_value=90, required=False)
    lng = serializers.FloatField(min_value=-180, max_value=180, required=False)
    is_default = serializers.BooleanField(
        required=False,
        help_text="true makes it the default; the default can't be set to false (make another "
        "address the default instead).",
    )
