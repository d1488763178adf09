"""The deployment files: docker-compose.yml wires the roles together; .env.example is complete.

There is no container engine on the test machines, so the compose file is checked by
reading it: services, commands, health checks, dependencies and settings.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import click
import pytest
import yaml

from newsletter.cli.core import cli, register
from newsletter.settings import env_example, known_variables

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def _command(service: dict) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else list(command)


def test_every_role_is_a_service(compose: dict) -> None:
    expected = {"redis", "postgres", "migrate", "web", "worker", "scheduler", "mailpit", "flower"}
    assert expected <= set(compose["services"])


def test_app_services_run_real_commands(compose: dict) -> None:
    register(cli)
    ctx = click.Context(cli)
    for name in ("migrate", "web", "worker", "scheduler"):
        argv = _command(compose["services"][name])
        assert argv[0] == "newsletter", name
        assert cli.get_command(ctx, argv[1]) is not None, f"{name}: no command {argv[1]!r}"


def test_redis_persists_and_never_evicts(compose: dict) -> None:
    argv = _command(compose["services"]["redis"])
    assert argv[argv.index("--appendonly") + 1] == "yes"
    assert argv[argv.index("--maxmemory-policy") + 1] == "noeviction"
    assert "healthcheck" in compose["services"]["redis"]


def test_start_order_waits_for_health_and_migration(compose: dict) -> None:
    services = compose["services"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["restart"] == "no"
    for name in ("web", "worker", "scheduler"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["redis"]["condition"] == "service_healthy", name
    assert "ports" not in services["worker"], "workers must scale: no fixed host port"


def test_every_variable_set_is_a_known_setting(compose: dict) -> None:
    known = set(known_variables())
    for name, service in compose["services"].items():
        for variable in service.get("environment") or {}:
            if variable.startswith("NEWSLETTER_"):
                assert variable in known, f"{name}: unknown setting {variable}"
    app_env = compose["services"]["worker"]["environment"]
    assert app_env["NEWSLETTER_DATABASE_URL"].startswith("postgresql")
    assert app_env["NEWSLETTER_REDIS_URL"].startswith("redis://redis:")


def test_env_example_lists_every_setting() -> None:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    assert text == env_example(), "regenerate it: newsletter config --example > .env.example"
    for variable in known_variables():
        assert f"\n{variable}=" in text


def test_readme_documents_every_setting() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [variable for variable in known_variables() if f"`{variable}`" not in text]
    assert not missing, f"README's configuration table lacks {missing}"
