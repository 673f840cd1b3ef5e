from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import DefaultRouter

from posture.api import reports, tokens, views
from posture.api.docs import docs_view

app_name = "api"  # route names (scan-detail, ...) live in their own namespace

router = DefaultRouter()
router.register("hosts", views.DockerHostViewSet, basename="host")
router.register("scans", views.ScanRunViewSet, basename="scan")
router.register("exceptions", views.ControlExceptionViewSet, basename="exception")
router.register("attestations", views.AttestationViewSet, basename="attestation")
router.register("controls", views.ControlViewSet, basename="control")
router.register("audit-events", views.AuditEventViewSet, basename="audit-event")
router.register("tokens", tokens.ApiTokenViewSet, basename="token")
router.register("reports", reports.ReportViewSet, basename="report")

urlpatterns = [
    path("", include(router.urls)),
    path("integrity/", reports.IntegrityView.as_view(), name="integrity"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", docs_view(url_name="api:schema"), name="api-docs"),
]
