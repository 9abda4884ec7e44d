"""OpenAPI generation: each operation's description names the roles that may call it."""

from django.core.exceptions import ImproperlyConfigured
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema

from tenancy.permissions import allowed_roles, permission_action_of, role_labels


class MatrixAutoSchema(AutoSchema):
    """Adds the roles that may call each operation to its OpenAPI description."""

    def get_description(self) -> str:  # type: ignore[override]  # drf-spectacular's signature
        description = super().get_description()
        resource = getattr(self.view, "permission_resource", None)
        if resource is None:
            return description
        try:
            action = permission_action_of(self.view)
        except ImproperlyConfigured:
            return description
        granted = ", ".join(role_labels(allowed_roles(resource, action)))
        line = f"Roles: {granted} (permission `{resource}.{action}`)."
        return f"{description}\n\n{line}" if description else line


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "tenancy.authentication.ApiClientTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "An API client's token: `Token <token>` (or `Bearer <token>`).",
        }


class StaffSessionScheme(OpenApiAuthenticationExtension):
    target_class = "tenancy.authentication.StaffSessionAuthentication"
    name = "staffSession"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict:
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": "sessionid",
            "description": "The console's login session; unsafe methods need the CSRF token.",
        }
