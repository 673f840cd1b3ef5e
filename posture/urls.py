from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from posture import (
    control_views,
    diff_views,
    exception_views,
    finding_views,
    integrity_views,
    overview_views,
    report_views,
    token_views,
    views,
)

urlpatterns = [
    path("", overview_views.overview, name="home"),
    path("scans/<int:pk>/", views.scan_detail, name="scan-page"),
    path("scans/<int:a>/diff/<int:b>/", diff_views.scan_diff, name="scan-diff-page"),
    path("findings/", finding_views.findings, name="findings-page"),
    path("controls/", control_views.controls, name="controls-page"),
    path("controls/<str:framework>/<str:ref>/", control_views.control_detail, name="control-page"),
    path("audit/", views.audit, name="audit-page"),
    path("exceptions/", exception_views.exceptions_page, name="exceptions-page"),
    path("exceptions/<int:pk>/", exception_views.exception_page, name="exception-page"),
    path("exceptions/<int:pk>/approve/", exception_views.exception_action, {"action": "approve"},
         name="exception-approve-page"),
    path("exceptions/<int:pk>/reject/", exception_views.exception_action, {"action": "reject"},
         name="exception-reject-page"),
    path("exceptions/<int:pk>/revoke/", exception_views.exception_action, {"action": "revoke"},
         name="exception-revoke-page"),
    path("attestations/", exception_views.attestations_page, name="attestations-page"),
    path("attestations/<int:pk>/file/", views.attestation_file, name="attestation-file-page"),
    path("integrity/", integrity_views.integrity_page, name="integrity-page"),
    path("integrity/<int:pk>/", integrity_views.integrity_host_page, name="integrity-host-page"),
    path("integrity/<int:pk>/verify/", integrity_views.verify_now, name="integrity-verify-page"),
    path("reports/", report_views.reports_page, name="reports-page"),
    path("reports/new/", report_views.report_new, name="report-new-page"),
    path("reports/<int:pk>/status/", report_views.report_status, name="report-status"),
    path("reports/<int:pk>/download/", report_views.report_download, name="report-download-page"),
    path("reports/<int:pk>/verify/", report_views.report_verify, name="report-verify-page"),
    path("tokens/", token_views.tokens_page, name="tokens-page"),
    path("tokens/<int:pk>/revoke/", token_views.revoke_token_page, name="token-revoke-page"),
    path("hosts/", include("posture.host_urls")),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("posture.api.urls")),
]

# Under /api/ these answer the API's JSON error body (posture/api/errors.py); pages are unchanged.
handler400 = "posture.api.errors.bad_request"
handler404 = "posture.api.errors.not_found"
handler500 = "posture.api.errors.server_error"
