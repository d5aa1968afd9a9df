"""The local stack's stand-ins (localstack.py's STANDINS: the servers of Aliyun's SendSms and
WeChat's subscribe messages in their documented shapes, and notifications' SMTP mailbox) agree
with the settings deploy/local/services.yaml gives notifications, and those settings stay on the
local stack: docker-compose.yml and deploy/k8s name none of them.

Files and modules are read only; tests/integration/test_local_standins.py runs the commands."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from urllib.parse import urlsplit

import localstack
import pytest
import yaml
from standins import aliyun_sms, wechat

from civicgrid_notifications.config import NotificationsSettings

ROOT = Path(__file__).resolve().parents[2]
STANDIN_SETTING_PREFIXES = ("CIVICGRID_SMS_", "CIVICGRID_SMTP_", "CIVICGRID_MAIL_", "CIVICGRID_WECHAT_")


def local_env(service: str) -> dict[str, str]:
    manifest = yaml.safe_load((ROOT / "deploy" / "local" / "services.yaml").read_text())["services"]
    [entry] = [s for s in manifest if s["name"] == service]
    return {k: str(v) for k, v in entry["local_env"].items()}


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_the_stand_ins_have_one_port_each_named_in_their_command_and_keep_state_in_local():
    ports = {name: port for name, (port, _) in localstack.STANDINS.items()}
    assert ports == {"aliyun-sms": 8025, "wechat": 8026, "mailbox": 1025}
    for name, (port, command) in localstack.STANDINS.items():
        assert command[0] == sys.executable, name  # the venv's interpreter: notifications installed
        assert option(command, "--port") == str(port), name
        kept = Path(option(command, "--log" if "--log" in command else "--dir"))
        assert kept.is_relative_to(localstack.LOCAL), name  # .local/ is git-ignored
    assert (aliyun_sms.PORT, wechat.PORT) == (localstack.SMS_PORT, localstack.WECHAT_PORT)
    assert ".local/" in (ROOT / ".gitignore").read_text().splitlines()


def test_each_stand_in_command_runs_something_that_exists():
    for name, (_, command) in localstack.STANDINS.items():
        if command[1] == "-m":
            assert importlib.util.find_spec(command[2]) is not None, name
        else:
            assert Path(command[1]).is_file() and Path(command[1]).parent == localstack.STANDINS_DIR, name
    _, mailbox = localstack.STANDINS["mailbox"]
    assert mailbox[1:3] == ["-m", "civicgrid_notifications.adapters.mailbox"] and "--host" not in mailbox  # 127.0.0.1


def test_notifications_on_the_local_stack_is_pointed_at_the_stand_ins_with_their_credentials():
    env = local_env("notifications")
    sms, wx = urlsplit(env["CIVICGRID_SMS_ENDPOINT"]), urlsplit(env["CIVICGRID_WECHAT_ENDPOINT"])
    assert (sms.hostname, sms.port) == ("127.0.0.1", localstack.SMS_PORT)
    assert (env["CIVICGRID_SMS_ACCESS_KEY_ID"], env["CIVICGRID_SMS_ACCESS_KEY_SECRET"]) == (
        aliyun_sms.ACCESS_KEY_ID, aliyun_sms.ACCESS_KEY_SECRET)
    assert (wx.scheme, wx.hostname, wx.port, wx.path) == ("http", "127.0.0.1", localstack.WECHAT_PORT, "")
    assert (env["CIVICGRID_WECHAT_APP_ID"], env["CIVICGRID_WECHAT_APP_SECRET"]) == (wechat.APP_ID, wechat.APP_SECRET)
    assert (env["CIVICGRID_SMTP_HOST"], int(env["CIVICGRID_SMTP_PORT"])) == ("127.0.0.1", localstack.SMTP_PORT)
    assert env["CIVICGRID_SMTP_SECURITY"] == "none"  # the mailbox speaks plain SMTP, on this host only


def test_notifications_takes_every_setting_the_local_stack_gives_it(monkeypatch: pytest.MonkeyPatch):
    env = local_env("notifications")
    known = {f"CIVICGRID_{name.upper()}" for name in NotificationsSettings.model_fields}
    assert set(env) - known == set()  # no typo: a misspelt setting would be silently ignored
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = NotificationsSettings()
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_security) == ("127.0.0.1", 1025, "none")
    assert settings.mail_from == env["CIVICGRID_MAIL_FROM"]
    assert settings.wechat_endpoint == env["CIVICGRID_WECHAT_ENDPOINT"]
    assert settings.wechat_app_secret.get_secret_value() == wechat.APP_SECRET


def test_the_stand_ins_settings_stay_on_the_local_stack():
    """The stand-ins' endpoints and local-only credentials never reach docker-compose or k8s (the
    settings' names may: the district's own Secret and env file carry them)."""
    env = {k: v for k, v in local_env("notifications").items() if k.startswith(STANDIN_SETTING_PREFIXES)}
    assert len(env) >= 10
    values = {v for k, v in env.items() if k.endswith(("_ENDPOINT", "_ID", "_SECRET", "_FROM"))}
    values |= {f"{env['CIVICGRID_SMTP_HOST']}:{env['CIVICGRID_SMTP_PORT']}"}
    assert len(values) >= 6
    files = [ROOT / "docker-compose.yml", *sorted((ROOT / "deploy" / "k8s").rglob("*.yaml"))]
    leaked = {f"{path.relative_to(ROOT)}: {value}" for path in files for value in values if value in path.read_text()}
    assert leaked == set()
