"""Every setting and every command-line option is documented in the README (Datasette's rule)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from agentdigest import config
from agentdigest.cli import app

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
MODELS = [config.SourceConfig, config.ArchiveConfig, config.LedgerConfig, config.AlarmsConfig,
          config.OutboxChannel, config.EmailChannel, config.SlackChannel, config.WebhookChannel,
          config.ReportConfig]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_setting_is_documented(model):
    for name, field in model.model_fields.items():
        key = field.alias or name
        assert f"`{key}`" in README or re.search(rf"^{re.escape(key)} = ", README, re.M), \
            f"{model.__name__}.{key} is not documented in README.md"


def _commands():
    group = typer.main.get_command(app)
    return sorted(group.commands.items())


@pytest.mark.parametrize("name,command", _commands(), ids=[n for n, _ in _commands()])
def test_every_command_and_option_is_documented(name, command):
    assert f"agentdigest {name}" in README, f"command {name} is not documented"
    for param in command.params:
        for opt in getattr(param, "opts", []):
            if opt.startswith("--") and opt not in ("--help",):
                assert opt in README, f"option {opt} of `agentdigest {name}` is not documented"


@pytest.mark.parametrize("name", [n for n, _ in _commands()])
def test_help_shows_what_each_option_takes(name):
    """Typer's boxed help showed "<bool>" beside every flag and "\\[archive]" for an escaped bracket."""
    done = subprocess.run([sys.executable, "-m", "agentdigest.cli", name, "--help"], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "COLUMNS": "100"})
    assert done.returncode == 0 and "Options:" in done.stdout, done.stdout + done.stderr
    options = done.stdout.split("Options:")[1]
    assert "<bool>" not in options and "\\[" not in options and "<str>" not in options, done.stdout
    if name == "run":
        assert re.search(r"--format LIST +Comma list", done.stdout) and re.search(r"--dry-run +Compute", done.stdout)


def test_the_version_is_printed():
    done = subprocess.run([sys.executable, "-m", "agentdigest.cli", "--version"], capture_output=True, text=True,
                          timeout=60)
    from agentdigest import __version__

    assert done.returncode == 0 and done.stdout.strip() == f"agentdigest {__version__}"


def test_run_help_states_what_format_defaults_to():
    """Found by a new user: the help listed the formats but not what a run renders without --format
    (every format: run_request.parse_formats gives None, "all")."""
    from agentdigest.run_request import FORMATS, parse_formats

    assert parse_formats(None) is None and len(FORMATS) == 6
    done = subprocess.run([sys.executable, "-m", "agentdigest.cli", "run", "--help"], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "COLUMNS": "200"})
    assert "--format LIST Comma list of json, html, pdf, txt, eml, slack (default: all of them)." in " ".join(
        done.stdout.split()), done.stdout  # help lines wrap


@pytest.mark.parametrize("name", [n for n, c in _commands() if any(p.param_type_name == "argument" for p in c.params)])
def test_help_says_what_each_argument_is(name):
    """Found in a new-user audit: `resend --help` listed "REPORT_ID <str> [required]" and "PERIOD <str>
    [required]", with no word of what a PERIOD is."""
    command = dict(_commands())[name]
    for param in command.params:
        if param.param_type_name == "argument":
            assert param.help, f"argument {param.name} of `agentdigest {name}` has no help"


def test_the_install_instructions_work_without_pypi():
    """Found by a new user: `pip install agentdigest` fails (the package is not on PyPI)."""
    assert not re.search(r"^pip install agentdigest\b", README, re.M)
    assert "pip install -e '.[postgres]'" in README and "git+<repository URL>" in README


def test_the_readme_cites_no_file_the_repository_lacks():
    """Found by a new user: the README and pyproject.toml cited DESIGN.md, which is not in the repository."""
    root = Path(__file__).parent.parent
    assert not (root / "DESIGN.md").exists()
    assert "DESIGN.md" not in README and "DESIGN.md" not in (root / "pyproject.toml").read_text(encoding="utf-8")


def test_the_archive_and_ledger_defaults_are_the_documented_ones(tmp_path):
    """The README says where reports and the ledger go without [archive] and [ledger]: next to the config."""
    cfg = config.parse_config({"source": {"table": "agent_events"}, "reports": [{"id": "r"}]},
                              str(tmp_path / "agentdigest.toml"), base=tmp_path)
    assert Path(cfg.archive.path) == tmp_path / "reports" and cfg.ledger.url == f"sqlite:///{tmp_path / 'agentdigest.db'}"
    assert "Without an `[archive]` section reports are archived in `reports/` in the config file's folder" in README
    assert "without a\n`[ledger]` section the ledger is `sqlite:///agentdigest.db`" in README


def test_the_example_column_mapping_says_it_is_an_example():
    """Found by a new user: the example config's `event_ts = "created_at"`, copied as is, failed on the demo data."""
    line = next(line for line in README.splitlines() if line.startswith('event_ts = "created_at"'))
    assert "an example" in line and "time column is created_at" in line


def test_the_quick_start_says_where_a_config_for_your_own_events_comes_from():
    """Found installing agentdigest as a new user with events of their own: the quick start said "write a config"
    and ran `check` on it, but named no example to start from (there is no `init`), nor the column mapping that
    every own table needs, nor how to send for real after the dry run; `pip install -e` outside a virtual
    environment is refused by Debian's Python (externally-managed-environment)."""
    own = README.split("For your own events", 1)[1].split("\n## ", 1)[0]
    assert "python3 -m venv .venv" in own and "There is no `init` command" in own
    assert "[Configuration](#configuration)" in own and "[source.columns]" in own and "[Events](#events)" in own
    commands = [line.split("#")[0].split() for line in own.splitlines() if line.startswith("agentdigest ")]
    assert [c[1] for c in commands] == ["check", "run", "run", "run", "history"], commands
    assert {"--dry-run", "--test-to"} <= {word for c in commands for word in c}
