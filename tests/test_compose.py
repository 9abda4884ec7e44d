"""docker-compose.yml is for deployers (no container engine here): every service it declares
must start something this project has."""

from pathlib import Path

import yaml
from django.core.management import get_commands

from config.celery import app

ROOT = Path(__file__).resolve().parent.parent
REQUIRED_SERVICES = {"postgres", "redis", "web", "worker", "beat", "bridge", "simulator"}


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _commands(service: dict) -> list[list[str]]:
    command = service.get("command")
    if command is None:
        return []
    text = command if isinstance(command, str) else " ".join(command)
    text = text.removeprefix("sh -c ").strip("\"'")
    return [part.split() for part in text.split("&&")]


def test_compose_declares_every_runtime_part() -> None:
    assert set(_compose()["services"]) >= REQUIRED_SERVICES


def test_every_service_command_exists_in_the_project() -> None:
    management_commands = get_commands()
    for name, service in _compose()["services"].items():
        for argv in _commands(service):
            program = argv[0]
            if program == "python":
                assert argv[1] == "manage.py", (name, argv)
                assert argv[2] in management_commands, f"{name}: no command {argv[2]}"
            elif program == "celery":
                assert argv[1:3] == ["-A", "config"], (name, argv)
                assert app.main == "bars"
                if "--queues" in argv:
                    queue = argv[argv.index("--queues") + 1]
                    assert queue in {"default", "polling"}, (name, queue)
            elif program == "gunicorn":
                module, _, attribute = argv[1].partition(":")
                assert (ROOT / (module.replace(".", "/") + ".py")).exists(), name
                assert attribute == "application"
            elif program in {"redis-server"}:
                continue
            else:
                raise AssertionError(f"{name}: unexpected program {program}")


def test_the_image_build_file_exists() -> None:
    services = _compose()["services"]
    built = [name for name, service in services.items() if "build" in service]
    assert built and (ROOT / "Dockerfile").exists()
