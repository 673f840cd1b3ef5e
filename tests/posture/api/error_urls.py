"""The site's URLs plus two views that fail on purpose (409, and a bug: 500), for the error
body tests. Used with @pytest.mark.urls."""

from django.urls import path
from rest_framework.views import APIView

from posture.api.errors import Conflict
from posture.urls import handler400, handler404, handler500
from posture.urls import urlpatterns as site_urlpatterns

__all__ = ["handler400", "handler404", "handler500", "urlpatterns"]


class Clash(APIView):
    def get(self, request):
        raise Conflict("a token named 'ci' already exists")


class Bug(APIView):
    def get(self, request):
        raise RuntimeError("internal detail that must not reach the client")


urlpatterns = [
    path("api/v1/test/conflict/", Clash.as_view()),
    path("api/v1/test/bug/", Bug.as_view()),
    *site_urlpatterns,
]
