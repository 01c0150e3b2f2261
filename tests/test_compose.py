"""The production compose layout, checked as data (no Docker engine needed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
AIRFLOW_SERVICES = {
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
}
LONG_RUNNING = AIRFLOW_SERVICES - {"airflow-init"} | {"postgres", "redis"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_are_the_airflow_3_production_set(compose):
    assert set(compose["services"]) == AIRFLOW_SERVICES | {"postgres", "redis"}
    commands = {
        name: compose["services"][name].get("command") for name in AIRFLOW_SERVICES - {"airflow-init"}
    }
    assert commands == {
        "airflow-apiserver": "api-server",
        "airflow-scheduler": "scheduler",
        "airflow-dag-processor": "dag-processor",
        "airflow-triggerer": "triggerer",
        "airflow-worker": "celery worker --concurrency 2",
    }


def test_every_image_has_a_pinned_tag(compose):
    for name, service in compose["services"].items():
        image = service["image"]
        repo, _, tag = image.rpartition(":")
        assert repo and re.fullmatch(r"\d+(\.\d+)+(-[a-z0-9.]+)?", tag), (
            f"{name}: image {image} is not pinned"
        )


def test_postgres_is_the_metadata_database_and_celery_uses_redis(compose):
    env = compose["services"]["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    example = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert example["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert example["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@postgres:5432/airflow")
    assert example["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0"
    # Secrets live in the env file only.
    for key in (
        "POSTGRES_PASSWORD",
        "AIRFLOW__CORE__FERNET_KEY",
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "_AIRFLOW_WWW_USER_PASSWORD",
    ):
        assert example[key] == "change-me"
        # The compose file may refer to a secret ($${KEY}) but never assigns one.
        text = (ROOT / "docker-compose.yml").read_text()
        assert f"{key}:" not in text and f"{key}=" not in text, key


def test_secrets_come_from_the_env_file(compose):
    for name in AIRFLOW_SERVICES | {"postgres"}:
        assert compose["services"][name]["env_file"] == [".env"], name


def test_every_long_running_service_has_a_healthcheck(compose):
    for name in LONG_RUNNING:
        check = compose["services"][name]["healthcheck"]
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert check["retries"] >= 3 and check["interval"].endswith("s"), name
    assert "/api/v2/version" in " ".join(compose["services"]["airflow-apiserver"]["healthcheck"]["test"])


def test_start_order_waits_for_health_and_the_migration(compose):
    services = compose["services"]
    assert services["airflow-init"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    for name in AIRFLOW_SERVICES - {"airflow-init"}:
        depends = services[name]["depends_on"]
        assert depends["postgres"] == {"condition": "service_healthy"}, name
        assert depends["airflow-init"] == {"condition": "service_completed_successfully"}, name
    assert services["airflow-worker"]["depends_on"]["airflow-apiserver"] == {"condition": "service_healthy"}
    init = " ".join(services["airflow-init"]["command"])
    assert "airflow db migrate" in init and "airflow pools set crmwh_warehouse 1" in init
    assert "airflow users create --role Admin" in init


def test_the_data_volume_is_shared_by_every_airflow_service(compose):
    assert set(compose["volumes"]) == {"postgres-db", "airflow-logs", "crmwh-data"}
    for name in AIRFLOW_SERVICES:
        service = compose["services"][name]
        assert "crmwh-data:/opt/crmwh/data" in service["volumes"], name
        assert service["environment"]["CRMWH_HOME"] == "/opt/crmwh/data", name
    assert "postgres-db:/var/lib/postgresql/data" in compose["services"]["postgres"]["volumes"]


def test_the_image_is_built_from_the_project_dockerfile(compose):
    build = compose["services"]["airflow-worker"]["build"]
    dockerfile = ROOT / build["context"] / build["dockerfile"]
    text = dockerfile.read_text()
    assert text.startswith("#") and "FROM apache/airflow:3.3.2-python3.11" in text
    assert "requirements.lock" in text and "AIRFLOW__CORE__DAGS_FOLDER=/opt/crmwh/dags" in text
