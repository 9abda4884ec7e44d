from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views.defaults import page_not_found, server_error
from django.views.generic import RedirectView
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from config.errors import json_error_response
from config.router import router
from tenancy import second_factor
from tenancy import views as tenancy_views

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="console:home", permanent=False)),
    path("login/", tenancy_views.StaffLoginView.as_view(), name="login"),
    path("logout/", tenancy_views.StaffLogoutView.as_view(), name="logout"),
    path("two-factor/", second_factor.two_factor, name="two-factor"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("healthz", tenancy_views.health, name="health"),
    path("console/", include("console.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its script from its own URL: no inline script, so the page runs
    # under the Content-Security-Policy.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
]


def handler404(request: HttpRequest, exception: Exception) -> HttpResponse:
    if request.path.startswith("/api/"):
        return json_error_response(404, "not_found", "No such endpoint.")
    return page_not_found(request, exception)


def handler500(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        return json_error_response(500, "server_error", "The server failed; it has been logged.")
    return server_error(request)
