"""The API docs page (Swagger UI) under the Content-Security-Policy, for logged-in accounts.

drf-spectacular's default page starts Swagger UI with an inline <script> and styles it with
an inline <style>, both refused by our policy (settings.CONTENT_SECURITY_POLICY). The split
view serves the start-up script as a file of its own (same URL, ``?script=``) and our template
takes the styles from a static file, so the page needs no inline code at all. Anonymous
browsers are sent to the login page: the schema describes every endpoint."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from drf_spectacular.views import SpectacularSwaggerSplitView


class SwaggerDocsView(SpectacularSwaggerSplitView):
    template_name = "posture/swagger_ui.html"


def docs_view(url_name: str):
    """The docs page for the schema route ``url_name``, behind the login page."""
    return login_required(SwaggerDocsView.as_view(url_name=url_name))
