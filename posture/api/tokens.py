"""``/api/v1/tokens/``: personal API tokens over the API.

List (own tokens; an admin's list has everyone's, ``?owner=``, ``?state=``), create (the token
is in the answer once, never again), revoke (``POST .../revoke/``, or DELETE, which revokes:
the row is never deleted). There is no update: a token's secret cannot be changed or read.

A token cannot create tokens: a leaked token must not be able to mint itself a successor that
outlives its revocation. Tokens are created from a logged-in browser session (the /tokens/
page, or this endpoint with the session) or by ``manage.py create_token``.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from posture.api.permissions import RolePermission
from posture.api.views import _domain_call
from posture.filtersets import ApiTokenFilterSet
from posture.jobs import tokens as token_jobs
from posture.jobs.tokens import EXPIRY_MAX_DAYS, NAME_MAX
from posture.models import ApiToken
from posture.models.tokens import TokenState

TOKENS_CANNOT_CREATE = ("an API token cannot create tokens (a leaked one could outlive its revocation): "
                        "create tokens on the /tokens/ page or with manage.py create_token")


class ApiTokenSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.get_username", read_only=True)
    prefix = serializers.CharField(source="display_prefix", read_only=True,
                                   help_text="the start of the token, to tell tokens apart (not secret)")
    state = serializers.ChoiceField(choices=TokenState.choices, read_only=True)
    revoked_by = serializers.CharField(source="revoked_by.get_username", read_only=True, default=None,
                                       allow_null=True)
    name = serializers.CharField(max_length=NAME_MAX, help_text="what the token is for")
    expires_at = serializers.DateTimeField(required=False, allow_null=True,
                                           help_text="when it stops working; omit (and expires_in_days) for never")
    expires_in_days = serializers.IntegerField(write_only=True, required=False, allow_null=True, min_value=1,
                                               max_value=EXPIRY_MAX_DAYS, help_text="alternative to expires_at")

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "owner", "state", "created_at", "expires_at", "expires_in_days",
                  "last_used_at", "revoked_at", "revoked_by"]
        read_only_fields = ["created_at", "last_used_at", "revoked_at"]


class NewApiTokenSerializer(ApiTokenSerializer):
    token = serializers.CharField(read_only=True, help_text="the token itself: shown this once, store it now")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]


class ApiTokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                      mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Your personal API tokens (an admin sees and may revoke everyone's).

    Use one as ``Authorization: Bearer pst_...``; it acts with your roles. Creating answers
    the token once (``token``); afterwards only its prefix is shown. DELETE revokes (the row
    stays, as a record). Tokens cannot create tokens: log in, or use manage.py create_token."""

    serializer_class = ApiTokenSerializer
    permission_classes = [RolePermission]
    filterset_class = ApiTokenFilterSet

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user to ask about
            return ApiToken.objects.none()
        return token_jobs.visible_tokens(self.request.user)

    @extend_schema(request=ApiTokenSerializer, responses={201: NewApiTokenSerializer})
    def create(self, request, *args, **kwargs):
        if isinstance(request.auth, ApiToken):
            raise PermissionDenied(TOKENS_CANNOT_CREATE)
        ser = self.get_serializer(data=request.data)
        ser.is_valid(raise_exception=True)
        data = ser.validated_data
        new = _domain_call(token_jobs.create_token, request.user, data["name"], expires_at=data.get("expires_at"),
                           expires_in_days=data.get("expires_in_days"), actor=request.user)
        body = NewApiTokenSerializer(new.row, context=self.get_serializer_context()).data
        body["token"] = new.token
        return Response(body, status=status.HTTP_201_CREATED, headers={"Cache-Control": "no-store"})

    def _revoke(self, request) -> Response:
        token, _changed = _domain_call(token_jobs.revoke_token, request.user, self.get_object())
        return Response(self.get_serializer(token).data)

    @extend_schema(responses={200: ApiTokenSerializer}, description="Revokes the token (as POST .../revoke/); "
                   "idempotent. The row is kept.")
    def destroy(self, request, *args, **kwargs):
        return self._revoke(request)

    @extend_schema(request=None, responses=ApiTokenSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        """Revoke the token: it stops working at once. Idempotent."""
        return self._revoke(request)
