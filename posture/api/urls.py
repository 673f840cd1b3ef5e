from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import DefaultRouter

from posture.api import fleet, reports, tokens, views
from posture.api.docs import docs_view
from posture.api.permissions import RolePermission

app_name = "api"  # route names (scan-detail, ...) live in their own namespace


class APIRootView(DefaultRouter.APIRootView):
    """The index of the API's lists: it needs a role like every other endpoint."""

    permission_classes = [RolePermission]


router = DefaultRouter()
router.APIRootView = APIRootView
router.register("hosts", views.DockerHostViewSet, basename="host")
router.register("scans", views.ScanRunViewSet, basename="scan")
router.register("exceptions", views.ControlExceptionViewSet, basename="exception")
router.register("attestations", views.AttestationViewSet, basename="attestation")
router.register("controls", views.ControlViewSet, basename="control")
router.register("audit-events", views.AuditEventViewSet, basename="audit-event")
router.register("tokens", tokens.ApiTokenViewSet, basename="token")
router.register("reports", reports.ReportViewSet, basename="report")
router.register("findings", fleet.FindingViewSet, basename="finding")
router.register("posture", fleet.PostureViewSet, basename="posture")
router.register("frameworks", fleet.FrameworkViewSet, basename="framework")
router.register("history/windows", fleet.FailureWindowViewSet, basename="history-window")
router.register("history/gaps", fleet.GapViewSet, basename="history-gap")

urlpatterns = [
    path("", include(router.urls)),
    path("integrity/", reports.IntegrityView.as_view(), name="integrity"),
    path("history/trends/", fleet.TrendView.as_view(), name="history-trends"),
    path("history/effectiveness/", fleet.EffectivenessView.as_view(), name="history-effectiveness"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", docs_view(url_name="api:schema"), name="api-docs"),
]
