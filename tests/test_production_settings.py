"""Production (``DJANGO_DEBUG=0``) refuses to start without PostgreSQL and Redis, as it does
without its keys: a deploy that forgot them must stop at start, naming what is missing, instead
of running as one process on a SQLite file with tasks inside web requests and caches and
throttles per process. Settings are read once per process, so each test starts a fresh one."""

from __future__ import annotations

import json
import os
import secrets
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/bars_prodcheck"
REDIS_URL = "redis://127.0.0.1:6379/13"
SERVICES = ("DATABASE_URL", "REDIS_URL")
KEYS = ("DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "DJANGO_FIELD_ENCRYPTION_KEY")

SHOW_SETTINGS = """
import json, django
django.setup()
from django.conf import settings
print(json.dumps({
    "engine": settings.DATABASES["default"]["ENGINE"],
    "cache": settings.CACHES["default"]["BACKEND"],
    "broker": settings.CELERY_BROKER_URL,
    "eager": settings.CELERY_TASK_ALWAYS_EAGER,
    "debug": settings.DEBUG,
    "hsts": [settings.SECURE_HSTS_SECONDS, settings.SECURE_HSTS_INCLUDE_SUBDOMAINS,
             settings.SECURE_HSTS_PRELOAD],
}))
"""


def _clean_env(**settings: str) -> dict[str, str]:
    """The parent's environment without its own Django, database or Redis settings (the test
    run's DATABASE_URL must not leak into a process that should go without one)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("DJANGO_") and key not in SERVICES
    }
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    env.update(settings)
    return env


def _production_env(*, without: str | None = None, **overrides: str) -> dict[str, str]:
    """Everything production needs (throwaway keys), less ``without``."""
    settings = {
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "DJANGO_ALLOWED_HOSTS": "billing.example.com",
        "DJANGO_FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "DATABASE_URL": POSTGRES_URL,
        "REDIS_URL": REDIS_URL,
    }
    env = _clean_env(**(settings | overrides))
    if without is not None:
        env.pop(without)
    return env


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def _refusal(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, "it started:\n" + result.stdout + result.stderr
    assert "ImproperlyConfigured" in result.stderr, result.stderr
    return result.stderr.strip().splitlines()[-1]


def _dockerfile_env() -> dict[str, str]:
    """The variables the image sets (``ENV NAME=value …`` lines of the Dockerfile)."""
    env: dict[str, str] = {}
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("ENV "):
            for pair in shlex.split(line.removeprefix("ENV ")):
                name, _, value = pair.partition("=")
                env[name] = value
    return env


@pytest.mark.parametrize("service", SERVICES)
def test_production_refuses_to_start_without_a_service_and_names_it(service: str) -> None:
    result = _run(["manage.py", "check"], _production_env(without=service))
    assert f"{service} must be set when DJANGO_DEBUG=0" in _refusal(result)


def test_production_refuses_to_start_on_a_sqlite_database() -> None:
    env = _production_env(DATABASE_URL=f"sqlite:///{ROOT / 'var' / 'prodcheck.sqlite3'}")
    message = _refusal(_run(["manage.py", "check"], env))
    assert "DATABASE_URL must be a postgres://" in message
    assert "got sqlite://" in message


def test_production_refuses_a_redis_url_that_is_not_redis() -> None:
    message = _refusal(_run(["manage.py", "check"], _production_env(REDIS_URL="memory://")))
    assert "REDIS_URL must be a redis:// or rediss:// URL" in message


def test_the_refusal_names_the_scheme_but_never_repeats_the_url() -> None:
    env = _production_env(DATABASE_URL="mysql://bars:s3cret-password@db.example.com/bars")
    result = _run(["manage.py", "check"], env)
    assert "got mysql://" in _refusal(result)
    assert "s3cret-password" not in result.stderr


@pytest.fixture(scope="module")
def collected_static(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A static root filled by ``collectstatic``, as every documented production start does."""
    root = str(tmp_path_factory.mktemp("static"))
    env = _production_env(BARS_STATIC_ROOT=root)
    result = _run(["manage.py", "collectstatic", "--noinput"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    return root


def test_production_with_postgresql_and_redis_passes_the_deploy_check(
    collected_static: str,
) -> None:
    env = _production_env(BARS_STATIC_ROOT=collected_static)
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_refuses_to_serve_without_collected_static_files(
    tmp_path: Path, collected_static: str
) -> None:
    """Without ``collectstatic`` the login page, the admin and the API docs answered 500 while
    ``check --deploy`` was clean."""
    empty = _production_env(BARS_STATIC_ROOT=str(tmp_path))
    message = _refusal(_run(["-c", "import config.wsgi"], empty))
    assert "static files are not collected" in message
    assert "manage.py collectstatic --noinput" in message
    deploy = _run(["manage.py", "check", "--deploy"], empty)
    assert deploy.returncode != 0 and "bars.E001" in deploy.stderr + deploy.stdout
    served = _run(["-c", "import config.wsgi"], _production_env(BARS_STATIC_ROOT=collected_static))
    assert served.returncode == 0, served.stderr


def test_every_documented_production_start_collects_static_files() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    command = next(line for line in dockerfile.splitlines() if line.startswith("CMD "))
    assert command.index("collectstatic --noinput") < command.index("gunicorn")
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    web = compose["services"]["web"]["command"]
    assert web.index("collectstatic --noinput") < web.index("gunicorn")
    readme = (ROOT / "README.md").read_text()
    assert "collectstatic --noinput" in readme


def test_production_runs_on_postgresql_with_tasks_and_cache_on_redis() -> None:
    result = _run(["-c", SHOW_SETTINGS], _production_env())
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "engine": "django.db.backends.postgresql",
        "cache": "django.core.cache.backends.redis.RedisCache",
        "broker": REDIS_URL,
        "eager": False,
        "debug": False,
        "hsts": [31536000, False, False],
    }


def test_hsts_preload_and_subdomains_are_the_deployers_choice() -> None:
    result = _run(["-c", SHOW_SETTINGS], _production_env(DJANGO_HSTS_PRELOAD="1"))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["hsts"] == [31536000, True, True]


def test_the_demo_without_any_setting_keeps_the_embedded_default(tmp_path: Path) -> None:
    result = _run(["-c", SHOW_SETTINGS], _clean_env(BARS_VAR_DIR=str(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "engine": "django.db.backends.sqlite3",
        "cache": "django.core.cache.backends.locmem.LocMemCache",
        "broker": "memory://",
        "eager": True,
        "debug": True,
        "hsts": [0, False, False],
    }


def test_the_image_defaults_to_production_and_carries_no_keys() -> None:
    image_env = _dockerfile_env()
    assert image_env.get("DJANGO_DEBUG") == "0"
    assert not set(image_env) & {*KEYS, *SERVICES}


def test_the_image_started_without_its_environment_refuses_instead_of_serving_dev_keys() -> None:
    """What gunicorn imports in the image, with only the image's own variables set."""
    result = _run(["-c", "import config.wsgi"], _clean_env(**_dockerfile_env()))
    assert "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG=0" in _refusal(result)


def test_compose_runs_production_and_names_each_variable_a_deployer_must_give() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name in ("web", "worker", "beat", "bridge", "simulator"):
        environment = compose["services"][name]["environment"]
        assert environment["DJANGO_DEBUG"] == "0", name
        for key in KEYS:
            assert environment[key].startswith(f"${{{key}:?"), (name, key)
        assert environment["DATABASE_URL"].startswith("postgres://"), name
        assert "${POSTGRES_PASSWORD:?" in environment["DATABASE_URL"], name
        assert environment["REDIS_URL"].startswith("redis://"), name
    assert compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith(
        "${POSTGRES_PASSWORD:?"
    )
