"""The README and the OpenAPI schema say what the code does."""

from pathlib import Path

import pytest
import yaml
from django.core.management import call_command

from tenancy.management.commands.permission_matrix import replace_matrix

ROOT = Path(__file__).resolve().parent.parent


def test_the_readme_carries_the_current_permission_matrix() -> None:
    readme = (ROOT / "README.md").read_text()
    assert replace_matrix(readme) == readme, "run: manage.py permission_matrix --write README.md"
    for command in ("make demo", "make test", "/api/docs/", "DATABASE_URL", "REDIS_URL"):
        assert command in readme


@pytest.mark.django_db
def test_the_schema_builds_without_warnings_and_names_the_roles_of_every_operation(
    tmp_path: Path,
) -> None:
    call_command("spectacular", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))
    schema = yaml.safe_load((tmp_path / "schema.yml").read_text())
    operations = [
        (path, method, operation)
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    ]
    assert len(operations) >= 30
    undocumented = [
        f"{method.upper()} {path}"
        for path, method, operation in operations
        if "Roles:" not in operation.get("description", "")
    ]
    assert not undocumented
    assert {"apiToken", "staffSession"} <= set(schema["components"]["securitySchemes"])


@pytest.mark.django_db
def test_the_schema_documents_the_error_answers_and_blank_values(tmp_path: Path) -> None:
    """137 operations answered status codes the schema did not list; the meter profiles were
    documented as an object but are a list; a reading's relay state and a correction's method
    may be blank, outside their enums."""
    call_command("spectacular", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))
    schema = yaml.safe_load((tmp_path / "schema.yml").read_text())
    error = schema["components"]["schemas"]["Error"]
    assert error["properties"]["error"]["required"] == ["code", "message", "fields"]
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            listed = set(operation["responses"])
            assert {"400", "401", "403", "404", "429"} <= listed, (method, path)
            body = operation["responses"]["403"]["content"]["application/json"]["schema"]
            assert body == {"$ref": "#/components/schemas/Error"}
    profiles = schema["paths"]["/api/v1/meter-profiles/"]["get"]["responses"]["200"]
    assert profiles["content"]["application/json"]["schema"]["type"] == "array"
    components = schema["components"]["schemas"]
    for component, field in (("Reading", "relay_state"), ("Correction", "method")):
        choices = components[component]["properties"][field]["oneOf"]
        assert {"$ref": "#/components/schemas/BlankEnum"} in choices, component
