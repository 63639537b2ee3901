"""The scaled deployment (docker-compose.yml, Dockerfile) is wired together correctly.

No Docker engine runs in CI, so these tests read the real files and check what
`docker compose up` depends on: service names, images, environment, dependencies,
mounted files, published ports, and the image's entrypoint.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from commerce_sync.contracts.search_attributes import ALL_KEYS, CLI_TYPE_NAMES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

POSTGRES = "postgres"
TEMPORAL = "temporal"
TEMPORAL_UI = "temporal-ui"
SEARCH_ATTRIBUTE_JOB = "temporal-search-attributes"
SCHEMA_JOB = "temporal-schema"
API = "api"
WORKER = "worker"
SERVICES = (POSTGRES, SCHEMA_JOB, TEMPORAL, TEMPORAL_UI, SEARCH_ATTRIBUTE_JOB, API, WORKER)

# docs/design.md §2, "Search attributes".
DESIGN_SEARCH_ATTRIBUTES = {
    "IntegrationPair": "Keyword",
    "StoreOrderId": "Keyword",
    "ErpOrderId": "Keyword",
    "CustomerEmail": "Keyword",
    "SyncState": "Keyword",
    "OrderFlags": "KeywordList",
}

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, $VAR, and $$.
_INTERPOLATION = re.compile(
    r"\$\$|\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)


def _interpolate(value: Any) -> Any:
    """Render the file as compose would with an empty environment: defaults win,
    required variables become `<NAME>`, and `$$` becomes a literal `$`."""
    if isinstance(value, str):

        def render(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name = match.group("braced") or match.group("bare")
            op = match.group("op") or ""
            if op.endswith("-"):
                return str(match.group("arg"))
            return f"<{name}>"

        return _INTERPOLATION.sub(render, value)
    if isinstance(value, dict):
        return {key: _interpolate(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_interpolate(item) for item in value]
    return value


def _raw_compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict), "docker-compose.yml must be a mapping"
    return data


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return _raw_compose()


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    rendered = _interpolate(_raw_compose())
    assert isinstance(rendered, dict)
    return rendered


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose.get("services")
    assert isinstance(found, dict) and found, "docker-compose.yml defines no services"
    return found


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) for item in env)
        return {pair[0]: (pair[1] if len(pair) > 1 else "") for pair in pairs}
    return {str(key): "" if value is None else str(value) for key, value in env.items()}


def _depends_on(service: dict[str, Any]) -> dict[str, str]:
    """Dependency name -> condition (the short list form means service_started)."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def _published(service: dict[str, Any]) -> dict[int, int]:
    """Published host port -> container port."""
    result: dict[int, int] = {}
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            result[int(port["published"])] = int(port["target"])
            continue
        spec = str(port).split("/", 1)[0]
        parts = spec.rsplit(":", 2)
        if len(parts) == 1:  # container port only: published on a random port
            continue
        result[int(parts[-2])] = int(parts[-1])
    return result


def _bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(local source, container target) of every bind mount of a service."""
    mounts: list[tuple[str, str]] = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            if volume.get("type") == "bind":
                mounts.append((volume["source"], volume["target"]))
            continue
        source, _, rest = str(volume).partition(":")
        target = rest.split(":", 1)[0]
        if source.startswith((".", "/", "~")):
            mounts.append((source, target))
    return mounts


def _image_service(services: dict[str, dict[str, Any]], image_prefix: str) -> str:
    names = [
        name for name, svc in services.items() if str(svc.get("image", "")).startswith(image_prefix)
    ]
    assert len(names) == 1, f"expected one service running {image_prefix}, found {names}"
    return names[0]


def _job_script(service: dict[str, Any]) -> str:
    parts: list[str] = []
    for key in ("entrypoint", "command"):
        value = service.get(key) or []
        parts.extend([value] if isinstance(value, str) else [str(item) for item in value])
    return "\n".join(parts)


# -- the compose file ---------------------------------------------------------------


def test_compose_parses_and_defines_every_service(services: dict[str, dict[str, Any]]) -> None:
    missing = [name for name in SERVICES if name not in services]
    assert not missing, f"services missing from docker-compose.yml: {missing}"


def test_postgres_is_official_image_with_healthcheck_and_volume(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    postgres = services[POSTGRES]
    assert postgres["image"] == "postgres:16"
    assert postgres.get("healthcheck", {}).get("test"), "postgres needs a healthcheck"
    named = [str(v).split(":", 1)[0] for v in postgres.get("volumes") or [] if isinstance(v, str)]
    data_volumes = [name for name in named if name in (compose.get("volumes") or {})]
    assert data_volumes, "postgres data must live on a declared named volume"


def test_commerce_sync_database_is_created_by_an_init_script(
    services: dict[str, dict[str, Any]],
) -> None:
    init = [
        (source, target)
        for source, target in _bind_mounts(services[POSTGRES])
        if target.startswith("/docker-entrypoint-initdb.d")
    ]
    assert init, "no init script mounted into /docker-entrypoint-initdb.d"
    for source, _ in init:
        assert Path(source).as_posix().removeprefix("./").startswith("deploy/postgres/"), source
    scripts = "\n".join((ROOT / source).read_text(encoding="utf-8") for source, _ in init)
    assert re.search(r"CREATE DATABASE\s+\"?commerce_sync\"?", scripts, re.IGNORECASE)


def test_temporal_server_runs_on_postgres_once_it_is_healthy(
    services: dict[str, dict[str, Any]],
) -> None:
    """The server image (auto-setup is deprecated), started once a one-shot admin-tools
    job has created and migrated its two databases on the healthy Postgres."""
    temporal = services[TEMPORAL]
    assert re.fullmatch(r"temporalio/server:1\.[23]\d\.\d+", temporal["image"]), temporal["image"]
    env = _environment(temporal)
    assert env["DB"] == "postgres12"
    assert env["DB_PORT"] == "5432"
    assert env["POSTGRES_SEEDS"] == POSTGRES
    postgres_env = _environment(services[POSTGRES])
    assert env["POSTGRES_USER"] == postgres_env["POSTGRES_USER"]
    assert env["POSTGRES_PWD"] == postgres_env["POSTGRES_PASSWORD"]
    assert env["BIND_ON_IP"] == "0.0.0.0"
    assert _depends_on(temporal).get(SCHEMA_JOB) == "service_completed_successfully"

    job = services[SCHEMA_JOB]
    assert str(job["image"]).startswith("temporalio/admin-tools:")
    server_version = temporal["image"].split(":", 1)[1]
    assert str(job["image"]).split(":", 1)[1].startswith(server_version + "-")
    assert _depends_on(job).get(POSTGRES) == "service_healthy"
    assert job.get("restart", "no") == "no", "a one-shot job must not restart"
    job_env = _environment(job)
    assert job_env["SQL_PASSWORD"] == postgres_env["POSTGRES_PASSWORD"]
    assert job_env["POSTGRES_USER"] == postgres_env["POSTGRES_USER"]
    assert (job_env["POSTGRES_SEEDS"], job_env["DB_PORT"]) == (POSTGRES, "5432")
    [(source, target)] = _bind_mounts(job)
    assert target.split(":", 1)[0] in " ".join(job["entrypoint"])
    script = (ROOT / source).read_text(encoding="utf-8")
    for database, schema in (("temporal", "temporal"), ("temporal_visibility", "visibility")):
        assert database in script
        assert f"/etc/temporal/schema/postgresql/v12/{schema}/versioned" in script
    for step in ("create", "setup-schema -v 0.0", "update-schema -d"):
        assert step in script
    assert "already exists" in script, "a second `up` must keep the databases"


def test_temporal_dynamic_config_file_is_mounted_and_valid(
    services: dict[str, dict[str, Any]],
) -> None:
    temporal = services[TEMPORAL]
    configured = _environment(temporal).get("DYNAMIC_CONFIG_FILE_PATH")
    if configured is None:
        pytest.fail("the temporal service selects no dynamic config file")
    in_container = (
        Path(configured) if configured.startswith("/") else Path("/etc/temporal") / configured
    )
    local: Path | None = None
    for source, target in _bind_mounts(temporal):
        target_path = Path(target)
        if in_container == target_path:
            local = ROOT / source
        elif target_path in in_container.parents:
            local = ROOT / source / in_container.relative_to(target_path)
    assert local is not None, f"{in_container} is not mounted into the temporal service"
    assert local.is_file(), f"{local} does not exist"
    settings = yaml.safe_load(local.read_text(encoding="utf-8"))
    assert isinstance(settings, dict) and settings
    for key, values in settings.items():
        assert isinstance(values, list) and values, key
        assert all("value" in entry for entry in values), key
    assert settings["frontend.enableUpdateWorkflowExecution"][0]["value"] is True


def test_temporal_ui_points_at_the_temporal_service(services: dict[str, dict[str, Any]]) -> None:
    ui = services[TEMPORAL_UI]
    assert str(ui["image"]).startswith("temporalio/ui:")
    host, port = _host_port(_environment(ui)["TEMPORAL_ADDRESS"])
    assert host == _image_service(services, "temporalio/server:") == TEMPORAL
    assert port == 7233
    assert TEMPORAL in _depends_on(ui)
    assert _published(ui).get(8233) == 8080


def test_temporal_ui_decodes_through_the_api_with_the_codec_session(
    services: dict[str, dict[str, Any]],
) -> None:
    """The browser calls the API's keyed codec, sending the session cookie (README: PII)."""
    env = _environment(services[TEMPORAL_UI])
    # By default the API as the browser reaches it (its published port).
    assert env["TEMPORAL_CODEC_ENDPOINT"] == "http://localhost:8000/codec"
    assert 8000 in _published(services[API])
    assert str(env["TEMPORAL_CODEC_INCLUDE_CREDENTIALS"]).lower() == "true"
    origins = str(env["TEMPORAL_CORS_ORIGINS"])
    assert "http://localhost:8233" in origins


@pytest.mark.parametrize("name", [API, WORKER])
def test_api_and_worker_share_one_image_and_reach_temporal_and_postgres(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    service = services[name]
    build = service.get("build")
    context = build.get("context") if isinstance(build, dict) else build
    assert context == ".", f"{name} must build the repository's Dockerfile"
    env = _environment(service)

    host, port = _host_port(env["COMMERCE_SYNC_TEMPORAL_ADDRESS"])
    assert host == TEMPORAL and port == 7233

    url = urlsplit(env["DATABASE_URL"])
    assert url.scheme == "postgresql+psycopg"
    assert url.hostname == POSTGRES and services[url.hostname]["image"].startswith("postgres:")
    assert (url.port or 5432) == 5432
    assert url.path == "/commerce_sync"
    assert env["COMMERCE_SYNC_API_HOST"] == "0.0.0.0"


@pytest.mark.parametrize(("name", "command"), [(API, "api"), (WORKER, "worker")])
def test_api_and_worker_start_after_postgres_and_the_search_attributes(
    services: dict[str, dict[str, Any]], name: str, command: str
) -> None:
    service = services[name]
    given = service.get("command")
    assert (shlex.split(given) if isinstance(given, str) else given) == [command]
    deps = _depends_on(service)
    assert deps.get(POSTGRES) == "service_healthy"
    assert deps.get(SEARCH_ATTRIBUTE_JOB) == "service_completed_successfully"


def test_api_and_worker_run_the_same_build(services: dict[str, dict[str, Any]]) -> None:
    api, worker = services[API], services[WORKER]
    assert api.get("build") == worker.get("build")
    assert api.get("image") == worker.get("image")
    assert _environment(api) == _environment(worker)


def test_worker_runs_more_than_one_replica(services: dict[str, dict[str, Any]]) -> None:
    replicas = (services[WORKER].get("deploy") or {}).get("replicas", 1)
    assert int(replicas) > 1
    assert "container_name" not in services[WORKER], "replicas cannot share a container name"
    assert not services[WORKER].get("ports"), "replicas cannot share a published port"


def test_search_attribute_job_registers_exactly_the_design_attributes(
    services: dict[str, dict[str, Any]],
) -> None:
    job = services[SEARCH_ATTRIBUTE_JOB]
    assert str(job["image"]).startswith("temporalio/admin-tools:")
    env = _environment(job)
    declared = dict(pair.split("=", 1) for pair in env["SEARCH_ATTRIBUTES"].split())
    assert declared == DESIGN_SEARCH_ATTRIBUTES
    # ... and exactly the keys the workflows set on every run.
    assert declared == {key.name: CLI_TYPE_NAMES[key.indexed_value_type] for key in ALL_KEYS}

    script = _job_script(job)
    assert "$SEARCH_ATTRIBUTES" in script or "${SEARCH_ATTRIBUTES}" in script
    assert "temporal operator search-attribute create" in script
    assert '--namespace "$TEMPORAL_NAMESPACE"' in script and env["TEMPORAL_NAMESPACE"] == "default"
    assert "already exists" in script, "re-running the job must not fail"
    # The server image registers no namespace: the job does, when it is missing.
    assert "temporal operator namespace create" in script
    assert re.search(r"\b(until|while)\b", script), "the job must wait for the server"
    assert _host_port(env["TEMPORAL_ADDRESS"]) == (TEMPORAL, 7233)
    assert TEMPORAL in _depends_on(job)
    assert job.get("restart", "no") == "no", "a one-shot job must not restart"


def test_search_attribute_job_escapes_its_shell_variables(raw: dict[str, Any]) -> None:
    """A single `$` in the script would be replaced by compose before the shell sees it."""
    script = _job_script(raw["services"][SEARCH_ATTRIBUTE_JOB])
    assert "$$" in script
    assert "$" not in script.replace("$$", ""), "use $$ for shell variables in compose"


def test_every_dependency_names_an_existing_service(services: dict[str, dict[str, Any]]) -> None:
    conditions = {"service_started", "service_healthy", "service_completed_successfully"}
    for name, service in services.items():
        for dependency, condition in _depends_on(service).items():
            assert dependency in services, f"{name} depends on unknown service {dependency}"
            assert condition in conditions, f"{name}: unknown condition {condition}"
            if condition == "service_healthy":
                assert services[dependency].get("healthcheck"), f"{dependency} has no healthcheck"


def test_every_mounted_local_file_exists(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    declared_volumes = compose.get("volumes") or {}
    for name, service in services.items():
        for source, _ in _bind_mounts(service):
            assert not Path(source).is_absolute(), f"{name} mounts a host path: {source}"
            assert (ROOT / source).exists(), f"{name} mounts missing {source}"
        for volume in service.get("volumes") or []:
            if isinstance(volume, str) and not volume.startswith((".", "/", "~")):
                assert volume.split(":", 1)[0] in declared_volumes, volume


def test_api_and_ui_ports_are_published(services: dict[str, dict[str, Any]]) -> None:
    assert _published(services[API]).get(8000) == 8000
    assert _published(services[TEMPORAL_UI]).get(8233) == 8080


def test_no_literal_secrets_in_the_compose_file(raw: dict[str, Any]) -> None:
    secret_name = re.compile(r"PASSWORD|PWD|SECRET|TOKEN|API_KEY", re.IGNORECASE)
    # ${NAME} or ${NAME:?message}: no default value that could hold a secret.
    from_environment = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?\?[^}]*)?\}")
    for name, service in raw["services"].items():
        env = _environment(service)
        for key, value in env.items():
            if secret_name.search(key):
                assert from_environment.fullmatch(value), f"{name}.{key} is written in the file"
        if "DATABASE_URL" in env:
            credentials = re.fullmatch(
                r"[^:]+://[^:/@]+:(?P<password>.*)@[^@]+", env["DATABASE_URL"]
            )
            assert credentials, f"{name}: DATABASE_URL has no user:password"
            assert from_environment.fullmatch(credentials["password"]), (
                f"{name}: DATABASE_URL holds a literal password"
            )
    for name in (API, WORKER):
        env_files = raw["services"][name].get("env_file") or []
        assert {"path": ".env", "required": False} in env_files, name


# -- the image ----------------------------------------------------------------------


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    instructions: list[tuple[str, str]] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        keyword, _, rest = stripped.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_dockerfile_builds_on_python_311_slim() -> None:
    bases = [rest.split()[0] for keyword, rest in _dockerfile_instructions() if keyword == "FROM"]
    assert bases and all(base == "python:3.11-slim" for base in bases), bases


def test_dockerfile_entrypoint_is_the_console_script() -> None:
    entrypoints = [rest for keyword, rest in _dockerfile_instructions() if keyword == "ENTRYPOINT"]
    assert entrypoints, "no ENTRYPOINT"
    assert json.loads(entrypoints[-1]) == ["commerce-sync"]


def test_dockerfile_installs_the_project_without_dev_dependencies() -> None:
    runs = [rest for keyword, rest in _dockerfile_instructions() if keyword == "RUN"]
    installs = [shlex.split(run) for run in runs if re.search(r"\bpip install\b", run)]
    assert any("." in argv for argv in installs), "the project is never installed with pip"
    assert not any("[dev]" in run for run in runs), "dev dependencies in the image"
    assert not any({"-e", "--editable"} & set(argv) for argv in installs), "editable install"


def test_dockerfile_runs_as_a_non_root_user() -> None:
    users = [rest for keyword, rest in _dockerfile_instructions() if keyword == "USER"]
    assert users, "no USER: the image would run as root"
    user = users[-1].split(":", 1)[0]
    assert user not in {"root", "0"}


def _ignored(name: str, patterns: list[str]) -> bool:
    """.dockerignore semantics for a top-level path: the last matching pattern wins."""
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.removeprefix("!").strip("/")
        if fnmatch.fnmatch(name, pattern):
            excluded = not negate
    return excluded


def test_build_context_holds_what_the_image_copies_and_no_secrets() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    copies = [rest for keyword, rest in _dockerfile_instructions() if keyword == "COPY"]
    sources = [
        source
        for copy in copies
        if "--from=" not in copy
        for source in [arg for arg in shlex.split(copy) if not arg.startswith("--")][:-1]
    ]
    assert sources, "the Dockerfile copies nothing from the repository"
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
        assert not _ignored(Path(source).parts[0], patterns), (
            f"COPY {source}: .dockerignore drops it"
        )
    for secret in (".env", ".venv", ".data", ".git"):
        assert _ignored(secret, patterns), f"{secret} would be sent to the Docker daemon"


# ---- sync health: Prometheus and Grafana ------------------------------------------------

PROMETHEUS, GRAFANA = "prometheus", "grafana"
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"


def _mount_target(service: dict[str, Any], source: str) -> str:
    found = [target for local, target in _bind_mounts(service) if local.rstrip("/") == source]
    assert found, f"{source} is not mounted"
    return found[0].split(":", 1)[0]


def test_prometheus_scrapes_the_api_with_a_read_key_and_every_worker(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    prometheus = services[PROMETHEUS]
    config_path = _mount_target(prometheus, "./deploy/prometheus/prometheus.yml")
    assert config_path == "/etc/prometheus/prometheus.yml"
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    api = jobs["commerce-sync-api"]
    assert api["static_configs"][0]["targets"] == ["api:8000"]
    assert api["metrics_path"] == "/metrics" and api["authorization"]["type"] == "Bearer"
    [secret] = prometheus["secrets"]
    assert api["authorization"]["credentials_file"] == f"/run/secrets/{secret}"
    assert compose["secrets"][secret] == {"environment": "COMMERCE_SYNC_METRICS_API_KEY"}
    # Every worker replica, by the compose DNS name, on the port its settings bind.
    [dns] = jobs["commerce-sync-worker"]["dns_sd_configs"]
    assert dns["names"] == [WORKER]
    bind = _environment(services[WORKER])["COMMERCE_SYNC_METRICS__WORKER_BIND_ADDRESS"]
    assert bind == f"0.0.0.0:{dns['port']}"


def test_grafana_is_provisioned_with_prometheus_and_the_shipped_dashboard(
    services: dict[str, dict[str, Any]],
) -> None:
    grafana = services[GRAFANA]
    provisioning = _mount_target(grafana, "./deploy/grafana/provisioning")
    assert provisioning == "/etc/grafana/provisioning"
    dashboards_at = _mount_target(grafana, "./deploy/grafana/dashboards")
    provisioned = ROOT / "deploy" / "grafana" / "provisioning"
    [provider] = yaml.safe_load((provisioned / "dashboards" / "commerce-sync.yml").read_text())[
        "providers"
    ]
    assert provider["options"]["path"] == dashboards_at
    [source] = yaml.safe_load((provisioned / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    assert source["url"] == "http://prometheus:9090" and PROMETHEUS in _depends_on(grafana)
    dashboard = json.loads((DASHBOARDS / "commerce-sync.json").read_text())
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"])
    titles = " ".join(panel["title"] for panel in dashboard["panels"]).lower()
    for topic in ("per minute", "p99", "budget", "throttled", "dead letters", "approval", "step"):
        assert topic in titles, topic
