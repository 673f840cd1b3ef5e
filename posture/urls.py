from django.contrib import admin
from django.urls import include, path

from posture import views

urlpatterns = [
    path("", views.home, name="home"),
    path("scans/<int:pk>/", views.scan_detail, name="scan-detail"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("posture.api.urls")),
]
