"""Plug-in channels: a channel class registered in code, or installed as a package with an
``agentdigest.channels`` entry point, is configured in agentdigest.toml like a built-in one."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Literal

import pytest

from agentdigest import config
from agentdigest.channels import BaseChannel, Receipt, TargetResult, make_channel, register, unregister
from agentdigest.errors import ConfigError

BASE = {
    "source": {"url": "duckdb://events.duckdb", "table": "agent_events"},
    "reports": [{"id": "weekly", "channels": ["birds"]}],
}


class PigeonSettings(config.ChannelSettings):
    type: Literal["pigeon"]
    loft: str
    ring: config.SecretStr | None = None


class Pigeon(BaseChannel):
    type = "pigeon"
    settings_model = PigeonSettings

    def deliver(self, delivery):
        return Receipt(tuple(TargetResult(t, "sent", self.settings.loft) for t in delivery.targets))


@pytest.fixture(scope="module")
def duckdb_events(tmp_path_factory) -> Path:
    from agentdigest.demo import setup

    folder = tmp_path_factory.mktemp("events")
    setup(folder, conversations=2000)
    return folder / "events.duckdb"


@pytest.fixture
def pigeon():
    register(Pigeon)
    yield Pigeon
    unregister("pigeon")


def test_a_registered_channel_is_configured_from_the_file(pigeon):
    cfg = config.parse_config({**BASE, "channels": {"birds": {"type": "pigeon", "loft": "roof", "timeout": 5}}})
    settings = cfg.channels["birds"]
    assert isinstance(settings, PigeonSettings) and (settings.loft, settings.timeout) == ("roof", 5)
    assert isinstance(make_channel("birds", settings), Pigeon)


@pytest.mark.parametrize("channel,key,words", [
    ({"type": "pigeon"}, "channels.birds.loft", ["is required"]),
    ({"type": "pigeon", "loft": "roof", "wings": 2}, "channels.birds.wings", ["unknown key"]),
    ({"type": "pigeon", "loft": "roof", "timeout": -1}, "channels.birds.timeout", ["greater than 0"]),
    ({"type": "owl"}, "channels.birds", ["unknown channel type 'owl'", "pigeon", "outbox"]),
])
def test_a_plugin_channel_error_is_one_line_naming_the_key(pigeon, channel, key, words):
    with pytest.raises(ConfigError) as info:
        config.parse_config({**BASE, "channels": {"birds": channel}}, "agentdigest.toml")
    message = str(info.value)
    assert message.startswith(f"agentdigest.toml: {key}: ") and "\n" not in message, message
    for word in words:
        assert word in message, message


def test_without_the_plugin_its_type_is_unknown():
    with pytest.raises(ConfigError, match="unknown channel type 'pigeon'"):
        config.parse_config({**BASE, "channels": {"birds": {"type": "pigeon", "loft": "roof"}}})


PLUGIN_MODULE = '''
from pathlib import Path
from typing import Literal

from agentdigest.channels import BaseChannel, Receipt, TargetResult
from agentdigest.config import ChannelSettings, SecretStr


class CarrierSettings(ChannelSettings):
    type: Literal["carrier"]
    loft: str
    token: SecretStr


class Carrier(BaseChannel):
    """Drops report.json in a folder and signs the drop with the token (a secret)."""
    type = "carrier"
    settings_model = CarrierSettings

    def deliver(self, delivery):
        folder = Path(self.settings.loft)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{delivery.report_id}-{delivery.period_key}.json").write_bytes(delivery.artifacts["report.json"])
        return Receipt(tuple(TargetResult(t, "sent", "dropped") for t in delivery.targets))
'''


def test_an_installed_plugin_package_delivers_from_the_command_line(tmp_path, duckdb_events):
    """A package on the path with an entry point: no code of ours names it, the config does."""
    site = tmp_path / "site"
    (site / "agentdigest_carrier-0.1.dist-info").mkdir(parents=True)
    (site / "agentdigest_carrier.py").write_text(PLUGIN_MODULE)
    (site / "agentdigest_carrier-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: agentdigest-carrier\nVersion: 0.1\n")
    (site / "agentdigest_carrier-0.1.dist-info" / "entry_points.txt").write_text(
        "[agentdigest.channels]\ncarrier = agentdigest_carrier:Carrier\n")
    home = tmp_path / "home"
    home.mkdir()
    (home / "events.duckdb").write_bytes(duckdb_events.read_bytes())
    (home / "agentdigest.toml").write_text(textwrap.dedent("""
        [source]
        url = "duckdb://events.duckdb"
        table = "agent_events"
        [ledger]
        url = "sqlite:///ledger.db"
        [channels.birds]
        type = "carrier"
        loft = "drops"
        token = "${CARRIER_TOKEN}"
        [[reports]]
        id = "weekly"
        channels = ["birds"]
    """))
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site), "CARRIER_TOKEN": "PLANTED-carrier-token",
           "HOME": str(tmp_path)}

    def agentdigest(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "agentdigest.cli", *args, "--config", "agentdigest.toml"],
                              cwd=home, env=env, capture_output=True, text=True, timeout=300)

    checked = agentdigest("check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    ran = agentdigest("run")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "birds: sent" in ran.stdout
    drops = list((home / "drops").glob("weekly-*.json"))
    assert len(drops) == 1 and b'"report_id": "weekly"' in drops[0].read_bytes()
    for path in home.rglob("*"):
        if path.is_file():
            assert b"PLANTED" not in path.read_bytes(), path
    assert "PLANTED" not in ran.stdout + ran.stderr

    (site / "agentdigest_carrier.py").write_text("raise ImportError('half-installed')\n")
    broken = agentdigest("run")
    assert broken.returncode == 2 and len(broken.stderr.strip().splitlines()) == 1, broken.stderr
    assert "agentdigest_carrier:Carrier" in broken.stderr and "half-installed" in broken.stderr


#: The agentdigest this test imported (a clone's src/, not necessarily the installed one) for a subprocess to run.
_SOURCE = Path(config.__file__).resolve().parents[1]


def test_a_plugin_that_fails_to_load_with_a_long_error_of_several_lines_is_one_short_line(tmp_path):
    """A plug-in's error of several lines split the one line, and a long one (or a long entry-point name) was
    repeated whole: its first line is said, shortened, as a key and a value are (config_errors.key_part, shown)."""
    site = tmp_path / "site"
    (site / "agentdigest_pigeon-0.1.dist-info").mkdir(parents=True)
    (site / "agentdigest_pigeon.py").write_text("raise ImportError('needs libcoo\\n' + 'see the log ' * 500)\n")
    (site / "agentdigest_pigeon-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: agentdigest-pigeon\nVersion: 0.1\n")
    (site / "agentdigest_pigeon-0.1.dist-info" / "entry_points.txt").write_text(
        f"[agentdigest.channels]\npigeon{'p' * 5000} = agentdigest_pigeon:Pigeon\n")
    (tmp_path / "agentdigest.toml").write_text('[source]\nurl = "duckdb://"\ntable = "t"\n[[reports]]\nid = "r"\n')
    done = subprocess.run([sys.executable, "-m", "agentdigest.cli", "check", "--config", "agentdigest.toml"],
                          cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{site}{os.pathsep}{_SOURCE}",
                                             "HOME": str(tmp_path)},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and len(done.stderr) < 300, done.stderr
    assert done.stderr.startswith("agentdigest: error: agentdigest.toml: entry point agentdigest.channels.'pigeonppp"), \
        done.stderr
    assert "(ImportError: needs libcoo)" in done.stderr and "see the log" not in done.stderr, done.stderr
