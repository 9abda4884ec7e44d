"""OpenAPI generation: each operation's description names the roles that may call it."""

from django.core.exceptions import ImproperlyConfigured
from drf_spectacular.openapi import AutoSchema

from tenancy.permissions import allowed_roles, permission_action_of, role_labels


class MatrixAutoSchema(AutoSchema):
    """Adds the roles that may call each operation to its OpenAPI description."""

    def get_description(self) -> str:
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
