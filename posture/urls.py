from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from posture import control_views, diff_views, finding_views, overview_views, token_views, views

urlpatterns = [
    path("", overview_views.overview, name="home"),
    path("scans/<int:pk>/", views.scan_detail, name="scan-page"),
    path("scans/<int:a>/diff/<int:b>/", diff_views.scan_diff, name="scan-diff-page"),
    path("findings/", finding_views.findings, name="findings-page"),
    path("controls/", control_views.controls, name="controls-page"),
    path("controls/<str:framework>/<str:ref>/", control_views.control_detail, name="control-page"),
    path("audit/", views.audit, name="audit-page"),
    path("attestations/", views.attestations, name="attestations-page"),
    path("attestations/<int:pk>/file/", views.attestation_file, name="attestation-file-page"),
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
