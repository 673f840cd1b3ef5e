"""The host pages (posture/host_views.py), under /hosts/. Names are global, like the site's."""

from django.urls import path

from posture import host_views

urlpatterns = [
    path("", host_views.hosts_page, name="hosts-page"),
    path("new/", host_views.host_add_page, name="host-add-page"),
    path("<int:pk>/", host_views.host_page, name="host-page"),
    path("<int:pk>/edit/", host_views.host_edit_page, name="host-edit-page"),
    path("<int:pk>/archive/", host_views.archive_page, name="host-archive-page"),
    path("<int:pk>/unarchive/", host_views.unarchive_page, name="host-unarchive-page"),
    path("<int:pk>/scan/", host_views.scan_now, name="host-scan-page"),
    path("<int:pk>/scan-status/", host_views.scan_status, name="host-scan-status"),
]
