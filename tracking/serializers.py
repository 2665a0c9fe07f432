from rest_framework import serializers

MAX_BATCH = 500


class PingInSerializer(serializers.Serializer):
    # Values are checked by ping_record_many, which gives each bad ping its reason; here the shape.
    lat = serializers.JSONField(allow_null=True)
    lng = serializers.JSONField(allow_null=True)
    accuracy = serializers.JSONField(allow_null=True)
    ts = serializers.JSONField(
        allow_null=True, help_text="Epoch milliseconds or ISO 8601 with a time zone."
    )


class PingBatchInSerializer(serializers.Serializer):
    pings = PingInSerializer(many=True, allow_empty=False, max_length=MAX_BATCH)


class PingResultSerializer(serializers.Serializer):
    ts = serializers.JSONField()
    accepted = serializers.BooleanField()
    reason = serializers.CharField(allow_blank=True)
    message = serializers.CharField(allow_blank=True)


class PingBatchOutSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    rejected = serializers.IntegerField()
    results = PingResultSerializer(many=True)


class ShiftInSerializer(serializers.Serializer):
    on_shift = serializers.BooleanField()

    def to_internal_value(self, data):
        # DRF reads a boolean missing from a form (HTML checkboxes) as False: a form post that
        # says nothing must not end the shift.
        if not hasattr(data, "__contains__") or "on_shift" not in data:
            raise serializers.ValidationError(
                {"on_shift": [self.fields["on_shift"].error_messages["required"]]}
            )
        return super().to_internal_value(data)


class NearbyQuerySerializer(serializers.Serializer):
    lat = serializers.FloatField(min_value=-90, max_value=90)
    lng = serializers.FloatField(min_value=-180, max_value=180)
    radius_m = serializers.IntegerField(min_value=50, max_value=20_000, default=1_000)
    limit = serializers.IntegerField(min_value=1, max_value=100, default=50)


class PublicVendorOnMapSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The vendor's slug.")
    name = serializers.CharField()
    url = serializers.CharField()
    cell = serializers.CharField(help_text="H3 cell at the public resolution: all that is shown.")
    coarse = serializers.CharField()
    centre = serializers.ListField(child=serializers.FloatField())
    boundary = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()))
    presence = serializers.CharField()
    last_seen = serializers.DateTimeField(allow_null=True)
    products = serializers.ListField(child=serializers.IntegerField())
    distance_m = serializers.IntegerField(required=False)


class NearbyOutSerializer(serializers.Serializer):
    results = PublicVendorOnMapSerializer(many=True, help_text="Nearest first.")
