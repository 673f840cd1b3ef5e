from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from posture import views

urlpatterns = [
    path("", views.home, name="home"),
    path("scans/<int:pk>/", views.scan_detail, name="scan-page"),
    path("audit/", views.audit, name="audit-page"),
    path("attestations/", views.attestations, name="attestations-page"),
    path("attestations/<int:pk>/file/", views.attestation_file, name="attestation-file-page"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("posture.api.urls")),
]
