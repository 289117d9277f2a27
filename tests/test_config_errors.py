"""A bad config is one clear line naming the file and the key, exit 2 (3 for an unreachable source)."""

import copy
import os
import subprocess
import sys
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
import pytest

from agentdigest.channel_settings import shown
from agentdigest.config import SecretStr, load_config, parse_config
from agentdigest.masking import mask_url
from agentdigest.errors import ConfigError

GOOD = """
[source]
url = "duckdb://events.duckdb"
table = "agent_events"

[channels.box]
type = "outbox"
path = "outbox"

[channels.mail]
type = "email"
to = ["cto@example.com"]
from = "reports@example.com"
smtp_url = "${SMTP_URL}"

[[reports]]
id = "weekly"
period = "week"
timezone = "Europe/Berlin"
schedule = "0 9 * * mon"
channels = ["box"]
"""


@pytest.fixture()
def workdir(tmp_path: Path) -> Path:
    con = duckdb.connect(str(tmp_path / "events.duckdb"))
    con.execute("""CREATE TABLE agent_events AS SELECT 'e1' AS event_id, 'c1' AS conversation_id,
                   TIMESTAMPTZ '2026-11-20 10:00:00+00' AS event_ts, 'message' AS event_type""")
    con.close()
    return tmp_path


def _run(workdir: Path, text: str | None, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    cfg = workdir / "agentdigest.toml"
    if text is not None:
        cfg.write_text(text)
    full_env = {**os.environ, "SMTP_URL": "smtp://u:pw@127.0.0.1:1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "agentdigest.cli", "run", "--config", str(cfg), "--dry-run", "--format", "json", *args],
        capture_output=True, text=True, cwd=workdir, env=full_env, timeout=120,
    )


BAD = [
    # (name, edit of GOOD, expected exit, words the one line must contain)
    ("toml syntax", lambda s: s.replace('table = "agent_events"', 'table = agent_events'), 2, ["invalid TOML"]),
    ("unknown timezone", lambda s: s.replace("Europe/Berlin", "Europe/Berln"), 2, ["reports[0].timezone", "Europe/Berln", "IANA"]),
    ("fixed-offset timezone", lambda s: s.replace("Europe/Berlin", "EST"), 2, ["reports[0].timezone", "daylight saving", "America/New_York"]),
    ("misspelt key", lambda s: s.replace('period = "week"', 'perod = "week"'), 2, ["reports[0].perod", "did you mean 'period'?"]),
    ("[[report]] for [[reports]]", lambda s: s.replace("[[reports]]", "[[report]]"), 2, ["report: unknown key", "did you mean 'reports'?"]),
    # Found by a new user: "channel" is also [alarms]'s key, and was offered as the fix of itself.
    ("[channel.x] for [channels.x]", lambda s: s.replace("[channels.box]", "[channel.box]"), 2,
     ["channel: unknown key", "did you mean 'channels'?"]),
    # Found by a new user: pydantic's "String should match pattern '^[A-Za-z0-9][A-Za-z0-9_.-]*$'".
    ("report id with a space", lambda s: s.replace('id = "weekly"', 'id = "weekly exec"'), 2,
     ["reports[0].id", "'weekly exec' is not a report id", "letters, digits, '_', '.' and '-', starting with a "
      "letter or digit", "archive folders"]),
    ("cron that never fires", lambda s: s.replace("0 9 * * mon", "0 9 30 2 *"), 2, ["reports[0].schedule", "never fires"]),
    ("catch_up as a boolean", lambda s: s.replace('period = "week"', 'period = "week"\ncatch_up = true'), 2, ["reports[0].catch_up"]),
    ("bad cron", lambda s: s.replace("0 9 * * mon", "0 25 * * mon"), 2,
     ["reports[0].schedule: invalid cron expression '0 25 * * mon': hour '25' is not in 0-23; expected e.g. '0 9 * * mon'"]),
    ("unknown period", lambda s: s.replace('period = "week"', 'period = "fortnight"'), 2, ["reports[0].period", "fortnight", "day"]),
    ("unknown channel", lambda s: s.replace('channels = ["box"]', 'channels = ["nope"]'), 2, ["reports[0].channels[0]", "nope"]),
    ("unknown channel type", lambda s: s.replace('type = "outbox"', 'type = "pigeon"'), 2, ["channels.box", "pigeon", "outbox"]),
    ("missing table", lambda s: s.replace('table = "agent_events"', 'table = "events_v2"'), 2, ["events_v2", "not found"]),
    ("missing column", lambda s: s.replace('table = "agent_events"', 'table = "agent_events"\n[source.columns]\nevent_ts = "created_at"'), 2, ["created_at", "event_ts"]),
    ("unknown key", lambda s: s.replace('period = "week"', 'period = "week"\ntimezon = "UTC"'), 2, ["reports[0].timezon", "unknown key"]),
    ("bad address", lambda s: s.replace("cto@example.com", "cto at example"), 2, ["channels.mail.to", "email address"]),
    ("a weekday baseline for a week report", lambda s: s.replace('period = "week"', 'period = "week"\ncompleteness_baseline = "same_weekday"'), 2,
     ["reports[0].completeness_baseline", "day reports"]),
    # Found in a config audit: "yes", true and "95" were taken as True, 1 and 95.
    ("a switch written as a word", lambda s: s.replace('period = "week"', 'period = "week"\nredact = "yes"'), 2,
     ["reports[0].redact", "got text, expected true or false"]),
    ("a count written as a switch", lambda s: s.replace('period = "week"', 'period = "week"\nfailure_examples = true'), 2,
     ["reports[0].failure_examples", "got true or false, expected an integer"]),
    ("an empty agents list", lambda s: s.replace('period = "week"', 'period = "week"\nagents = []'), 2,
     ["reports[0].agents", "at least one agent_id"]),
    ("a wildcard inside an agent", lambda s: s.replace('period = "week"', 'period = "week"\nagents = ["bill*-bot"]'), 2,
     ["reports[0].agents", "only at the end"]),
    ("a lone wildcard for agents", lambda s: s.replace('period = "week"', 'period = "week"\nagents = ["*"]'), 2,
     ["reports[0].agents", "names no agent"]),
    ("a number written as text", lambda s: s.replace('period = "week"', 'period = "week"\ncompleteness_threshold = "95"'), 2,
     ["reports[0].completeness_threshold", "number"]),
    # Found in a config re-check: these passed, and a run or check --missed ended "unexpected error: OverflowError".
    ("a timeout of centuries", lambda s: s.replace('smtp_url = "${SMTP_URL}"', 'smtp_url = "${SMTP_URL}"\ntimeout = 1e300'), 2,
     ["channels.mail.timeout", "3600"]),
    ("a grace of eons", lambda s: s.replace('period = "week"', 'period = "week"\ngrace_minutes = 9999999999999999'), 2,
     ["reports[0].grace_minutes"]),
    ("a channel name with a line break", lambda s: s.replace("[channels.box]", '[channels."box\\nALERT: fake"]')
     .replace('channels = ["box"]', 'channels = ["box\\nALERT: fake"]'), 2, ["channels.", "a channel name is"]),
    ("a numeric Spark secret", lambda s: s + '[source.spark_conf]\n"spark.jdbc.password" = 12345678\n', 2,
     ["source.spark_conf.spark.jdbc.password", "environment"]),
    ("a Slack hook secret before a variable", lambda s: s + '[channels.chat]\ntype = "slack"\n'
     'webhook_url = "https://hooks.slack.com/services/T0/B0/XyZsEcReT123/${HOME}"\n', 2, ["channels.chat.webhook_url", "environment"]),
    ("two completeness baselines", lambda s: s.replace('period = "week"', 'period = "day"\nexpected_events_per_day = 100\n'
     'completeness_baseline = "same_weekday"').replace('schedule = "0 9 * * mon"', 'schedule = "0 9 * * *"'), 2,
     ["reports[0].completeness_baseline", "set one"]),
    ("a channel listed twice", lambda s: s.replace('channels = ["box"]', 'channels = ["box", "box"]'), 2,
     ["reports[0].channels", "'box' is listed twice"]),
    ("a template folder without report.html.j2", lambda s: s.replace('period = "week"', 'period = "week"\naudience = "."'), 2,
     ["reports[0].audience", "report.html.j2"]),
    # Found in a config audit: each passed check, then the run failed ("unexpected error") or misreported.
    ("infinite conversation window", lambda s: s.replace("[source]\n", "[source]\nmax_conversation_hours = inf\n"), 2,
     ["source.max_conversation_hours", "finite"]),
    ("infinite expected volume", lambda s: s.replace('period = "week"', 'period = "week"\nexpected_events_per_day = inf'), 2,
     ["reports[0].expected_events_per_day", "finite"]),
    ("a subject field with a format spec", lambda s: s.replace('period = "week"', 'period = "week"\nsubject = "{title:>99999999999}"'), 2,
     ["reports[0].subject", "no format spec", "{title}"]),
    ("a subject field with a conversion", lambda s: s.replace('period = "week"', 'period = "week"\nsubject = "{title!z}"'), 2,
     ["reports[0].subject", "{title}"]),
    ("catch_up beyond a year", lambda s: s.replace('period = "week"', 'period = "week"\ncatch_up = 100000000'), 2,
     ["reports[0].catch_up", "366"]),
    # Found in a config audit: check said ok ("in memory") or crashed, and every run ended "unexpected error".
    ("ledger url with two slashes", lambda s: s + '\n[ledger]\nurl = "sqlite://agentdigest.db"\n', 2,
     ["ledger.url", "sqlite:///path", "three slashes"]),
    ("ledger url with a bad port", lambda s: s + '\n[ledger]\nurl = "postgresql://u:${HOME}@127.0.0.1:notaport/db"\n', 2,
     ["ledger.url", "port must be a number"]),
    # libpq's primary-and-replicas form, which the ledger takes as the source does: a bad one says which host
    ("ledger url with several hosts, one port not a number", lambda s: s + '\n[ledger]\nurl = "postgresql://u:${HOME}@'
     '127.0.0.1:5432,127.0.0.1:x5433/db?target_session_attrs=read-write"\n', 2,
     ["ledger.url", "not a usable PostgreSQL URL", "host '127.0.0.1': port 'x5433' is not a number from 1 to 65535"]),
    ("ledger url with several hosts, one empty", lambda s: s + '\n[ledger]\nurl = "postgresql://u:${HOME}@127.0.0.1:5432,,'
     'db2/db"\n', 2, ["ledger.url", "one of its 3 hosts is empty"]),
    ("ledger url with several hosts and ?port=", lambda s: s + '\n[ledger]\nurl = "postgresql://u@db1,db2/db?port=5432"\n',
     2, ["ledger.url", "name the hosts once"]),
    # Found in a config re-check: these passed too, and the run ended "unexpected error: ModuleNotFoundError".
    ("ledger url with an async driver", lambda s: s + '\n[ledger]\nurl = "postgresql+asyncpg://u@127.0.0.1/db"\n', 2,
     ["ledger.url", "async driver"]),
    ("ledger url with a driver not installed", lambda s: s + '\n[ledger]\nurl = "postgresql+pg8000://u@127.0.0.1/db"\n', 2,
     ["ledger.url", "not installed"]),
    ("ledger url with a port out of range", lambda s: s + '\n[ledger]\nurl = "postgresql://u@127.0.0.1:99999/db"\n', 2,
     ["ledger.url", "99999"]),
    ("ledger url with an unknown driver", lambda s: s + '\n[ledger]\nurl = "postgresql+nosuch://u@127.0.0.1/db"\n', 2,
     ["ledger.url", "unknown database driver"]),
    # Found in an email audit: these passed, then failed at send time (every recipient, or as "cannot reach").
    ("non-ASCII mailbox", lambda s: s.replace("cto@example.com", "jö@example.com"), 2, ["channels.mail.to", "non-ASCII", "SMTPUTF8"]),
    ("password over plain smtp", lambda s: s.replace('"${SMTP_URL}"', '"smtp://reports:${HOME}@mail.example.com:25"'), 2,
     ["channels.mail.smtp_url", "unencrypted", "smtp+starttls://"]),
    ("missing ca_file", lambda s: s.replace('smtp_url = "${SMTP_URL}"', 'smtp_url = "${SMTP_URL}"\nca_file = "corp-ca.pem"'), 2,
     ["channels.mail.ca_file", "no such file", "corp-ca.pem"]),
    ("ca_file not PEM", lambda s: s.replace('smtp_url = "${SMTP_URL}"', 'smtp_url = "${SMTP_URL}"\nca_file = "events.duckdb"'), 2,
     ["channels.mail.ca_file", "not a PEM certificate bundle"]),
    # Found in a security audit: these passed check, and run died with "unexpected error: ValueError", exit 1.
    ("unicode line break in an address", lambda s: s.replace('"cto@example.com"', '"Ops\\u2028Bcc: x <cto@example.com>"'), 2,
     ["channels.mail.to", "line breaks"]),
    ("encoded word in an address", lambda s: s.replace('"cto@example.com"', '"=?utf-8?q?a=0D=0ABcc:_x?= <cto@example.com>"'), 2,
     ["channels.mail.to", "line breaks (an encoded word =?...?= decodes to one)"]),
    # Found in a new-user audit: "source.spark_conf.spark.x.str: got an array, input should be a valid string".
    ("an array as a Spark setting", lambda s: s + '[source.spark_conf]\n"spark.x" = [1]\n', 2,
     ["source.spark_conf.spark.x: got an array, expected text, a number or true or false"]),
    # Found in a Spark audit: TOML reads an unquoted dotted key as tables, and the quotes it needed were unnamed.
    ("an unquoted dotted Spark key", lambda s: s + '[source.spark_conf]\nspark.executor.memory = "2g"\nspark.executor.cores = 2\n', 2,
     ['source.spark_conf.spark: got a table, expected text, a number or true or false (a key with dots is written in '
      'quotes: "spark.executor.memory" = ...)']),
    ("a table as a DuckDB setting", lambda s: s.replace('table = "agent_events"', 'table = "agent_events"\n[source.settings]\nthreads = {n = 2}'), 2,
     ["source.settings.threads: got a table, expected text, a number or true or false"]),
    ("bad duckdb setting", lambda s: s.replace('table = "agent_events"', 'table = "agent_events"\n[source.settings]\nthreads = "lots"'), 2, ["source.settings.threads", "lots"]),
    ("literal smtp password", lambda s: s.replace('"${SMTP_URL}"', '"smtp://u:hunter2@127.0.0.1:25"'), 2, ["channels.mail.smtp_url", "environment", "${VAR}"]),
    ("literal bot token", lambda s: s + '[channels.chat]\ntype = "slack"\nbot_token = "xoxb-1-2-PLANTED"\nchannel = "#r"\n', 2, ["channels.chat.bot_token", "environment"]),
    ("literal slack webhook", lambda s: s + '[channels.chat]\ntype = "slack"\nwebhook_url = "https://hooks.slack.com/services/T0/B0/PLANTEDx"\n', 2, ["channels.chat.webhook_url", "environment"]),
    ("literal webhook secret", lambda s: s + '[channels.wh]\ntype = "webhook"\nurl = "https://example.com/in"\nsecret = "PLANTED-hmac"\n', 2, ["channels.wh.secret", "environment"]),
    ("token in a webhook query", lambda s: s + '[channels.wh]\ntype = "webhook"\nurl = "https://example.com/in?token=PLANTEDtoken"\n', 2, ["channels.wh.url", "environment"]),
    ("unknown subject field", lambda s: s.replace('channels = ["box"]', 'channels = ["box"]\nsubject = "{nope} {title}"'), 2, ["reports[0].subject", "{nope}", "period_label"]),
    ("broken subject template", lambda s: s.replace('channels = ["box"]', 'channels = ["box"]\nsubject = "{title"'), 2, ["reports[0].subject", "template"]),
    ("literal ledger password", lambda s: s + '[ledger]\nurl = "postgresql://reports:PLANTEDpw@db/agentdigest"\n', 2, ["ledger.url", "environment", "${VAR}"]),
    ("literal ledger password in the query", lambda s: s + '[ledger]\nurl = "postgresql://reports@db/agentdigest?password=PLANTEDpw"\n', 2, ["ledger.url", "environment"]),
    ("literal ledger password under an encoded key", lambda s: s + '[ledger]\nurl = "postgresql://reports@db/agentdigest?pass%77ord=PLANTEDpw"\n', 2, ["ledger.url", "environment"]),
    ("literal source password", lambda s: s.replace("duckdb://events.duckdb", "postgresql://reports:PLANTEDpw@db/events"), 2, ["source.url", "environment"]),
    # Found in a config audit: any ${...} in a value let a secret written next to it pass.
    ("literal password beside a variable", lambda s: s.replace('"${SMTP_URL}"', '"smtp://u:hunter2@${HOME}:25"'), 2,
     ["channels.mail.smtp_url", "environment"]),
    ("literal ledger password beside a variable", lambda s: s + '[ledger]\nurl = "postgresql://u:PLANTEDpw@db/${HOME}"\n', 2,
     ["ledger.url", "environment"]),
    ("literal token with a variable suffix", lambda s: s + '[channels.chat]\ntype = "slack"\nbot_token = "xoxb-1-2-PLANTED${HOME}"\nchannel = "#r"\n', 2,
     ["channels.chat.bot_token", "environment"]),
    # Found in a new-user audit: refused only when Spark started, so a DuckDB config carried it unnoticed, and a
    # missing pyspark or Java was said instead.
    ("a Spark setting agentdigest sets itself", lambda s: s + '[source.spark_conf]\n"spark.master" = "yarn"\n', 2,
     ["source.spark_conf.spark.master", "agentdigest sets this itself", "expected it left out"]),
    ("literal Spark secret", lambda s: s + '[source.spark_conf]\n"spark.hadoop.fs.s3a.secret.key" = "PLANTEDs3"\n', 2,
     ["source.spark_conf.spark.hadoop.fs.s3a.secret.key", "environment"]),
    ("completeness threshold as a fraction", lambda s: s.replace('period = "week"', 'period = "week"\ncompleteness_threshold = 0.95'), 2, ["reports[0].completeness_threshold", "percentage such as 95"]),
    # Found by a new user: "Input should be a valid number", and nothing said the quotes were the trouble.
    # The kind of what was written, never its value (it may come from an environment variable).
    ("number in quotes", lambda s: s.replace('period = "week"', 'period = "week"\nhuman_cost_per_conversation = "4.5"'), 2,
     ["reports[0].human_cost_per_conversation", "got text, expected a number", "without quotes"]),
    ("list as text", lambda s: s.replace('channels = ["box"]', 'channels = "box"'), 2,
     ["reports[0].channels", "got text", "an array ([...])"]),
    ("a number as the title", lambda s: s.replace('period = "week"', 'period = "week"\ntitle = 5'), 2,
     ["reports[0].title", "got an integer, expected text in quotes"]),
    ("unsupported ledger url", lambda s: s + '[ledger]\nurl = "mysqlx://nope"\n', 2, ["ledger.url", "sqlite:///"]),
    ("unknown source engine", lambda s: s.replace("duckdb://events.duckdb", "foodb://x/y"), 2, ["agentdigest.toml", "source.url", "foodb://"]),
    ("unreachable source", lambda s: s.replace("duckdb://events.duckdb", "duckdb://missing/events.duckdb"), 3, ["DuckDB", "not found"]),
    ("unreachable postgres", lambda s: s.replace("duckdb://events.duckdb", "postgresql://nobody@127.0.0.1:1/none"), 3, ["source", "127.0.0.1"]),
    # Found by a new user: DuckDB opened a Parquet file's path as an in-memory database and said only
    # "Cannot launch in-memory database in read-only mode!" (exit 3).
    ("parquet file as database", lambda s: s.replace("duckdb://events.duckdb", "duckdb://events.parquet"), 2,
     ["source.url", "names a data file, not a database", 'url = "duckdb://" and files = [']),
    # Found in a new-user audit: an outbox path that is not text failed as "unexpected error: TypeError", exit 1,
    # and a path key that is not text named pydantic's class ("a valid path for <class 'pathlib.Path'>").
    ("outbox path as a number", lambda s: s.replace('path = "outbox"', 'path = 5'), 2,
     ["channels.box.path", "got an integer", "a path in quotes"]),
    ("archive path as an array", lambda s: s + '[archive]\npath = ["reports"]\n', 2,
     ["archive.path", "got an array", "a path in quotes"]),
    # Found in a new-user audit: a URL setting without its scheme was "a secret written into the file".
    ("smtp url without its scheme", lambda s: s.replace('"${SMTP_URL}"', '"smtp.example.com:587"'), 2,
     ["channels.mail.smtp_url", "expected smtp://, smtp+starttls:// or smtps://"]),
    ("webhook url without its scheme", lambda s: s + '[channels.wh]\ntype = "webhook"\nurl = "example.com/in"\n', 2,
     ["channels.wh.url", "expected an http(s) URL"]),
    # Found by a new user: "${SMTP_PW" (no closing brace) was "a secret written into the file", and "$SMTP_URL"
    # (shell style) was read as that text and refused as "expected smtp://...".
    ("a variable left unclosed", lambda s: s.replace('"${SMTP_URL}"', '"smtp+starttls://u:${SMTP_PW@127.0.0.1:587"'), 2,
     ["channels.mail.smtp_url: a ${ without a variable name and } after it (expected ${NAME}; $$ is a literal $)"]),
    ("a variable written shell-style", lambda s: s.replace('"${SMTP_URL}"', '"$SMTP_URL"'), 2,
     ["channels.mail.smtp_url: $SMTP_URL is not read as a variable (expected ${SMTP_URL}, or $$SMTP_URL for the text"]),
    ("an unclosed variable in a title", lambda s: s.replace('period = "week"', 'period = "week"\ntitle = "Agents ${TEAM"'), 2,
     ["reports[0].title: a ${ without a variable name"]),
    # Found by a new user: a mapping written the wrong way round, and a canonical name short of its unit.
    ("a column mapping written the wrong way round", lambda s: s.replace('table = "agent_events"',
     'table = "agent_events"\n[source.columns]\n"Event Time" = "event_ts"'), 2,
     ['source.columns: unknown canonical column \'Event Time\'; a mapping is canonical = "yours" '
      '(expected event_ts = "Event Time")']),
    ("a canonical column short of its unit", lambda s: s.replace('table = "agent_events"',
     'table = "agent_events"\n[source.columns]\nlatency = "lat"'), 2,
     ["source.columns: unknown canonical column 'latency' (did you mean 'latency_ms'?)"]),
    # Found in a config audit: a 5,000-character value was repeated whole in the "one line".
    ("a very long timezone", lambda s: s.replace("Europe/Berlin", "Europe/" + "Z" * 5000), 2,
     ["reports[0].timezone: unknown timezone 'Europe/" + "Z" * 53 + "'… (5,007 characters) (expected an IANA"]),
]


def test_a_url_setting_without_its_scheme_is_refused_unechoed(workdir):
    """A password in a URL setting that lacks its scheme is refused for the scheme, and never repeated;
    written beside a variable it is still a secret written into the file."""
    bare = _run(workdir, GOOD.replace('"${SMTP_URL}"', '"u:PLANTEDpw@smtp.example.com:587"'))
    assert bare.returncode == 2 and "channels.mail.smtp_url: expected smtp://" in bare.stderr
    assert "PLANTED" not in bare.stderr
    beside = _run(workdir, GOOD.replace('"${SMTP_URL}"', '"${SCHEME}://u:PLANTEDpw@smtp.example.com:587"'),
                  env={"SCHEME": "smtps"})
    assert beside.returncode == 2 and "channels.mail.smtp_url: a secret written into the file" in beside.stderr
    assert "PLANTED" not in beside.stderr


@pytest.mark.parametrize("name,edit,code,words", BAD, ids=[b[0] for b in BAD])
def test_bad_config_is_one_clear_line(workdir, name, edit, code, words):
    result = _run(workdir, edit(GOOD))
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    if code == 2:
        assert "agentdigest.toml" in lines[0]
    assert not (workdir / "reports").exists()  # nothing ran


@pytest.mark.parametrize("api_url", ["http://proxyuser:PLANTEDproxy@127.0.0.1:8088/api/",
                                     "https://slack-proxy.internal/api/?token=PLANTEDproxy"])
def test_a_slack_api_url_with_credentials_is_refused_unechoed(workdir, api_url):
    """Found in a security audit: slack-sdk sends no credentials from the URL; it took "user:pw@host" for
    the host and every error (stderr, the ledger) printed the password."""
    config = GOOD + ('[channels.chat]\ntype = "slack"\nbot_token = "${SLACK_TOKEN}"\nchannel = "C1"\n'
                     'api_url = "${SLACK_API_URL}"\n')
    result = _run(workdir, config, env={"SLACK_TOKEN": "xoxb-1-PLANTED", "SLACK_API_URL": api_url})
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "channels.chat.api_url: expected a URL without credentials" in line and "PLANTED" not in line


@pytest.mark.parametrize("key,value,local,message", [
    ("api_url", "http://slack-proxy.internal/api/", "http://127.0.0.1:9/api/", "channels.chat.api_url: expected an https URL"),
    ("webhook_url", "http://hooks.slack.com/services/T0/B0/PLANTEDpath", "http://localhost:9/services/T0/B0/PLANTEDpath",
     "channels.chat: 'webhook_url' must be an https URL"),
    # found in a re-check: a name that starts like the loopback address passed as one
    ("webhook_url", "http://127.0.0.1.evil.example/services/T0/B0/PLANTEDpath", "http://[::1]:9/services/T0/B0/PLANTEDpath",
     "channels.chat: 'webhook_url' must be an https URL"),
    ("api_url", "http://localhost.evil.example/api/", "HTTP://LOCALHOST:9/api/", "channels.chat.api_url: expected an https URL"),
])
def test_slack_secrets_never_travel_over_plain_http(workdir, key, value, local, message):
    """Found in a Slack audit: an http api_url sent "Authorization: Bearer xoxb-..." unencrypted (check's
    auth.test included), and an http webhook URL its secret path. http stays allowed to this machine."""
    mode = 'webhook_url = "${SLACK_URL}"\n' if key == "webhook_url" else \
        'bot_token = "${SLACK_TOKEN}"\nchannel = "C1"\napi_url = "${SLACK_URL}"\n'
    config = GOOD + '[channels.chat]\ntype = "slack"\n' + mode
    env = {"SLACK_TOKEN": "xoxb-1-PLANTED"}
    result = _run(workdir, config, env={**env, "SLACK_URL": value})
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert message in line and "PLANTED" not in line, line
    allowed = _run(workdir, config, env={**env, "SLACK_URL": local})
    assert "must be an https URL" not in allowed.stderr and "expected an https URL" not in allowed.stderr, allowed.stderr


def test_source_file_urls_never_show_their_credentials(workdir):
    """Found in a security audit: a file URL's password or presigned signature was echoed in errors;
    written into the file itself it was accepted."""
    literal = _run(workdir, GOOD.replace('url = "duckdb://events.duckdb"\ntable = "agent_events"',
                                         'url = "duckdb://"\nfiles = ["s3://AKIAX:PLANTEDkey@bucket/e.parquet"]'))
    assert literal.returncode == 2 and "source.files[0]: a credential written into the file" in literal.stderr
    assert "PLANTED" not in literal.stderr
    for url in ("http://reader:PLANTEDpw@127.0.0.1:9/e.parquet",
                "http://127.0.0.1:9/e.parquet?X-Amz-Signature=PLANTEDsig&X-Amz-Credential=AKIAX"):
        bad = _run(workdir, GOOD.replace('url = "duckdb://events.duckdb"\ntable = "agent_events"',
                                         'url = "duckdb://"\nfiles = ["${EVENTS_FILES}"]'), env={"EVENTS_FILES": url})
        assert bad.returncode in (2, 3) and "source.files" in bad.stderr, bad.stderr
        assert "PLANTED" not in bad.stdout + bad.stderr


def test_an_empty_environment_variable_is_named(workdir):
    """Found by a new user: SMTP_URL set but empty gave "expected smtp://..." about an empty value."""
    result = _run(workdir, GOOD, env={"SMTP_URL": ""})
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "channels.mail.smtp_url" in line and "environment variable SMTP_URL is empty" in line, line


@pytest.mark.parametrize("key, edit, env", [
    ("reports[0].title", lambda s: s.replace('period = "week"', 'period = "week"\ntitle = "${T}"'), {"T": "Rep\udcff\udcfeort"}),
    ("channels.mail.smtp_url", lambda s: s, {"SMTP_URL": "smtp://u:PLANTED\udce9@127.0.0.1:1"}),
])
def test_an_environment_variable_that_is_not_utf8_is_refused(workdir, key, edit, env):
    """Found in a leak audit: a title from a variable holding bytes that are not UTF-8 failed the run with
    "unexpected error: UnicodeEncodeError ... surrogates not allowed"; now exit 2 naming the key, value unshown."""
    result = _run(workdir, edit(GOOD), env=env)
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert key in line and "holds bytes that are not UTF-8" in line and "PLANTED" not in line, line


@pytest.mark.parametrize("smtp_url", [
    "smtp://reporter:Zq@Secret:PwD99@127.0.0.1:25",
    "smtp://reporter:Zq/Secret-PwD99@127.0.0.1:25",
    "smtp://reporter:Zq Secret PwD99@127.0.0.1:25",  # was printed unmasked
])
def test_a_raw_password_in_a_whole_url_variable_is_encoded_and_never_shown(workdir, smtp_url, monkeypatch):
    """A whole URL in one variable (DATABASE_URL style) with a raw "@", "/" or space in its password is
    URL-encoded for you, as a ${VAR} inside user:password@ is (a re-check: the driver read part of it as
    the port and printed it). It was a config error before; the password shows nowhere either way."""
    from agentdigest.config import load_config

    result = _run(workdir, GOOD, env={"SMTP_URL": smtp_url})
    assert result.returncode == 0, result.stderr
    assert "Secret" not in result.stderr + result.stdout and "PwD99" not in result.stderr + result.stdout
    monkeypatch.setenv("SMTP_URL", smtp_url)
    url = load_config(workdir / "agentdigest.toml").channels["mail"].smtp_url.get_secret_value()
    assert url.startswith("smtp://reporter:Zq%") and url.endswith("PwD99@127.0.0.1:25")


@pytest.mark.parametrize(("smtp_url", "words"), [
    ("smtp://127.0.0.1:99999", ["port"]),
    ("smtp://127.0.0.1:abc", ["port"]),
])
def test_a_bad_smtp_url_is_a_config_error_that_never_shows_the_password(workdir, smtp_url, words):
    """Found black-box: a bad port crashed the whole run (no channel delivered). Now: exit 2, one line
    naming the key, the password nowhere."""
    result = _run(workdir, GOOD, env={"SMTP_URL": smtp_url})
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "agentdigest.toml" in line and "channels.mail.smtp_url" in line
    for word in words:
        assert word in line, line
    assert "Secret" not in result.stderr + result.stdout and "PwD99" not in result.stderr + result.stdout


def test_urls_without_credentials_may_be_written_into_the_file(workdir):
    """Only secrets must come from the environment: a relay without login and a plain webhook URL are fine."""
    text = GOOD.replace('"${SMTP_URL}"', '"smtp://127.0.0.1:25"') + \
        '[channels.wh]\ntype = "webhook"\nurl = "https://example.com/agentdigest/ingest?format=json"\n'
    result = _run(workdir, text)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("command", ["run", "check"])
def test_missing_env_var_names_variable_and_key(workdir, command):
    """(`run --dry-run`, which sends nothing, goes without a channel's secret: tests/test_cli_messages.py.)"""
    env = {k: v for k, v in os.environ.items() if k != "SMTP_URL"}
    cfg = workdir / "agentdigest.toml"
    cfg.write_text(GOOD)
    result = subprocess.run([sys.executable, "-m", "agentdigest.cli", command, "--config", str(cfg)],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 2
    assert "SMTP_URL" in result.stderr and "channels.mail.smtp_url" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_file(tmp_path):
    result = subprocess.run([sys.executable, "-m", "agentdigest.cli", "run", "--config", str(tmp_path / "none.toml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "none.toml" in result.stderr and "not found" in result.stderr


@pytest.mark.parametrize("how", ["default", "environment", "option"])
def test_a_missing_file_names_the_path_looked_at_and_how_to_name_another(tmp_path, how):
    """Found by a new user: "agentdigest.toml: file not found" said neither which folder nor how to
    name another file."""
    env = {k: v for k, v in os.environ.items() if k != "AGENTDIGEST_CONFIG"}
    args = ["check"]
    if how == "environment":
        env["AGENTDIGEST_CONFIG"] = "conf/agentdigest.toml"
    if how == "option":
        args += ["--config", "conf/agentdigest.toml"]
    result = subprocess.run([sys.executable, "-m", "agentdigest.cli", *args], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path, env=env)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    looked = tmp_path / ("agentdigest.toml" if how == "default" else "conf/agentdigest.toml")
    line = result.stderr.strip()
    assert f"file not found: {looked} (" in line, line
    assert {"default": "(the default;", "environment": "(from $AGENTDIGEST_CONFIG;", "option": "(from --config;"}[how] in line
    assert "--config FILE" in line and "$AGENTDIGEST_CONFIG" in line and "agentdigest demo" in line


def test_a_link_to_a_missing_config_names_its_target(tmp_path):
    """Found in a CLI audit: agentdigest.toml linked to a deployment's config that was moved said "file not
    found: .../agentdigest.toml", a file `ls` shows; the error now names the link's missing target."""
    (tmp_path / "agentdigest.toml").symlink_to("releases/42/agentdigest.toml")
    env = {k: v for k, v in os.environ.items() if k != "AGENTDIGEST_CONFIG"}
    result = subprocess.run([sys.executable, "-m", "agentdigest.cli", "run"], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path, env=env)
    line = result.stderr.strip()
    assert result.returncode == 2 and len(line.splitlines()) == 1, result.stderr
    assert "agentdigest.toml: is a link to releases/42/agentdigest.toml, which does not exist" in line, line
    assert "Traceback" not in line


@pytest.mark.parametrize("given", ["", "conf"])
def test_a_folder_given_as_the_config_is_said_to_be_one(tmp_path, given):
    """Found in a new-user audit: `--config ""` (and a folder) said ".: cannot be read (Is a directory)"."""
    (tmp_path / "conf").mkdir()
    result = subprocess.run([sys.executable, "-m", "agentdigest.cli", "check", "--config", given],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    line = result.stderr.strip()
    assert result.returncode == 2 and len(line.splitlines()) == 1, result.stderr
    folder = given or "."
    assert f"{folder}: is a folder, not a config file (expected a TOML file such as " \
           f"{Path(folder) / 'agentdigest.toml'};" in line, line


def test_verbose_adds_traceback(workdir):
    result = _run(workdir, GOOD.replace("Europe/Berlin", "Mars/Olympus"), "--verbose")
    assert result.returncode == 2
    assert "Mars/Olympus" in result.stderr


def test_secret_values_are_held_as_secrets_and_masked(workdir, monkeypatch):
    monkeypatch.setenv("SMTP_URL", "smtp+starttls://reports:hunter2@mail.example.com:587")
    path = workdir / "agentdigest.toml"
    path.write_text(GOOD)
    cfg = load_config(path)
    mail = cfg.channels["mail"]
    assert isinstance(mail.smtp_url, SecretStr)
    assert "hunter2" not in repr(cfg) and "hunter2" not in str(mail)
    assert mask_url(mail.smtp_url.get_secret_value()) == "smtp+starttls://reports:***@mail.example.com:587"
    # A password that should have been URL-encoded is masked whole, up to the host.
    assert mask_url("smtp://reporter:Zq@Secret:PwD99@127.0.0.1:25") == "smtp://reporter:***@127.0.0.1:25"
    # Query credentials are recognised by their decoded name.
    assert mask_url("postgresql://u@db/x?sslmode=require&pass%77ord=hunter2") == "postgresql://u@db/x?sslmode=require&pass%77ord=***"
    assert mask_url("postgresql://u@db/x?sslmode=require") == "postgresql://u@db/x?sslmode=require"


def test_relative_paths_follow_the_config_file(workdir):
    path = workdir / "agentdigest.toml"
    path.write_text(GOOD.replace('path = "outbox"', 'path = "out/box"'))


    os.environ.setdefault("SMTP_URL", "smtp://127.0.0.1:1")  # restored by the process end; read only here
    cfg = load_config(path)
    assert cfg.source.url == f"duckdb://{workdir / 'events.duckdb'}"
    assert cfg.channels["box"].path == workdir / "out" / "box"
    assert cfg.archive.path == workdir / "reports"
    assert cfg.ledger.url == f"sqlite:///{workdir / 'agentdigest.db'}"


def test_a_tilde_in_a_path_is_the_home_folder(workdir, monkeypatch):
    monkeypatch.setenv("HOME", str(workdir / "home"))
    monkeypatch.setenv("SMTP_URL", "smtp://127.0.0.1:1")
    path = workdir / "agentdigest.toml"
    path.write_text(GOOD.replace('path = "outbox"', 'path = "~/outbox"') + '[archive]\npath = "~/reports"\n'
                    '[ledger]\nurl = "sqlite:///~/state/ledger.db"\n')
    cfg = load_config(path)
    assert cfg.archive.path == workdir / "home" / "reports"
    assert cfg.channels["box"].path == workdir / "home" / "outbox"
    assert cfg.ledger.url == f"sqlite:///{workdir / 'home' / 'state' / 'ledger.db'}"


@pytest.mark.parametrize("written, read", [("Cost in $$ (USD)", "Cost in $ (USD)"), ("$$HOME", "$HOME"),
                                           ("Save $5 a chat", "Save $5 a chat"), ("$${HOME}", "${HOME}"),
                                           ("Cost in $USD", "Cost in $USD")])
def test_dollar_dollar_is_a_literal_dollar(written, read):
    """A lone "$" stays text; only a whole value "$NAME" or a "${" that names no variable is refused."""
    cfg = parse_config({"source": {"url": "duckdb://", "table": "t"}, "reports": [{"id": "r", "title": written}]})
    assert cfg.reports[0].title == read


def test_a_misspelt_variable_never_shows_the_value():
    with pytest.raises(ConfigError) as caught:
        parse_config({"source": {"url": "postgresql://u:${PW@db/PLANTEDpw", "table": "t"}, "reports": [{"id": "r"}]})
    assert str(caught.value).startswith("agentdigest.toml: source.url: a ${ without") and "PLANTED" not in str(caught.value)


@pytest.mark.parametrize("written, meant", [("latency", "latency_ms"), ("cost", "cost_usd"), ("cost_usb", "cost_usd"),
                                            ("evnt_ts", "event_ts"), ("event_tss", "event_ts"), ("event_time", None),
                                            ("tokens", None), ("latnecy_ms", "latency_ms"), ("Event_TS", "event_ts"),
                                            ("Cost_Usb", "cost_usd")])
def test_an_unknown_canonical_column_suggests_only_a_likely_one(written, meant):
    """A suggestion only for a prefix or one typo: `event_time` is not `event_type` (difflib's closest). Letter case
    aside (`Event_TS` listed all eleven columns: one rule with Spark's keys, which were compared in any case)."""
    with pytest.raises(ConfigError) as caught:
        parse_config({"source": {"url": "duckdb://", "table": "t", "columns": {written: "x"}}, "reports": [{"id": "r"}]})
    said = str(caught.value)
    assert (f"(did you mean {meant!r}?)" in said) if meant else ("(expected one of event_id, " in said), said


#: Lines a new-user review found long (130 to 390 characters after the key), each with what it must still say.
LONG_BEFORE = [
    ('[channels.chat]\ntype = "slack"\nbot_token = "xoxb-1-2-PLANTED"\nchannel = "#r"\n', "channels.chat.bot_token",
     ['a secret written into the file (expected "${VAR}"', "environment"]),
    ('[ledger]\nurl = "postgresql://reports:PLANTEDpw@db/agentdigest"\n', "ledger.url",
     ['a password written into the file (expected "${VAR}" in its place', "environment"]),
    ('[channels.m]\ntype = "email"\nto = ["a@example.com"]\nfrom = "r@example.com"\nsmtp_url = "smtp://u:${HOME}@mail.example.com"\n',
     "channels.m.smtp_url", ["unencrypted", "expected smtp+starttls://", "smtps://", "only to this machine"]),
    ('[source.spark_conf]\n"spark.sql.csv.parser.columnPruning.enabled" = true\n',
     "source.spark_conf.spark.sql.csv.parser.columnPruning.enabled", ["agentdigest sets this itself", "expected it left out"]),
    ('[source.spark_conf]\n"spark.master" = "yarn"\n', "source.spark_conf.spark.master",
     ["agentdigest sets this itself", "source.url", "expected it left out"]),
    *[(f'[source.spark_conf]\n"{name}" = true\n', f"source.spark_conf.{name}", ["agentdigest sets this itself"])
      for name in __import__("agentdigest.source_settings").source_settings.SPARK_FIXED_CONF],
]


@pytest.mark.parametrize("extra, key, words", LONG_BEFORE, ids=[k for _, k, _ in LONG_BEFORE])
def test_long_config_error_lines_are_short(tmp_path, extra, key, words):
    cfg = tmp_path / "agentdigest.toml"
    cfg.write_text('[source]\nurl = "duckdb://"\nfiles = "e.parquet"\n' + extra + '[[reports]]\nid = "r"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(cfg)
    said = str(caught.value).removeprefix(f"{cfg}: ")
    assert said.startswith(f"{key}: ") and "PLANTED" not in said, said
    for word in words:
        assert word in said, said
    assert len(said) - len(key) <= 120, (len(said) - len(key), said)


@pytest.mark.parametrize("written", ["events.parquet", "data/2026/agent-events-export.csv.gz"])
def test_a_data_file_given_as_the_database_is_one_short_line(workdir, written):
    """Found trying agentdigest as a new user: url = "duckdb://events.parquet" said "source.url:
    duckdb:///.../events.parquet names a data file, not a DuckDB database (expected url = "duckdb://" and
    files = '/.../events.parquet')", the path twice (189 characters in a short temporary folder)."""
    result = _run(workdir, GOOD.replace("duckdb://events.duckdb", f"duckdb://{written}"))
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    key = f"{workdir / 'agentdigest.toml'}: source.url: "
    said = line.removeprefix("agentdigest: error: ")
    assert said.startswith(key) and line.count(written) == 1, line
    path = shown(str(workdir / written), path=True)  # cut to its last 60 characters
    assert said == f"{key}names a data file, not a database (expected url = \"duckdb://\" and files = [{path}] in place of table)"
    assert len(said) - len(key) - len(path) <= 100, (len(said) - len(key), said)


def test_a_data_file_as_the_url_without_a_table_says_to_write_files(workdir):
    """Found trying agentdigest as a new user: url = "duckdb://events.parquet" alone (no table, no files) said only
    "source: expected exactly one of 'table' or 'files'", not that the Parquet file belongs in files."""
    result = _run(workdir, GOOD.replace('url = "duckdb://events.duckdb"\ntable = "agent_events"',
                                        'url = "duckdb://events.parquet"'))
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    path = shown(str(workdir / "events.parquet"), path=True)
    assert line == (f"agentdigest: error: {workdir / 'agentdigest.toml'}: source: expected exactly one of 'table' or "
                    f"'files' (url names a data file: expected url = \"duckdb://\" and files = [{path}])"), line


@pytest.mark.parametrize("schedule, says", [
    ("60 9 * * mon", "minute '60' is not in 0-59"), ("0 9 32 * *", "day '32' is not in 1-31"),
    ("0 9 * 13 *", "month '13' is not in 1-12 or jan-dec"), ("0 9 * foo *", "month 'foo' is not in 1-12 or jan-dec"),
    ("0 9-30 * * *", "hour '9-30' is not in 0-23"), ("*/0 9 * * *", "minute '*/0': a step must be at least 1"),
    ("0 9 * * monday", "weekday 'monday' is not in 0-7 or sun, mon, ..., sat"),
    ("0 9 * * */x", "weekday '*/x': a step must be a number of at least 1"),
    ("0 9 * *", "it has 4 field(s), not 5 (minute hour day month weekday)"),
])
def test_a_cron_typo_names_its_field(schedule, says):
    """Found by a new user: APScheduler's "Error validating expression '25': the last value (25) is higher than the
    maximum value (23)" named no field, and "*/x" as a weekday step was "invalid literal for int() with base 10"."""
    with pytest.raises(ConfigError) as caught:
        parse_config({"source": {"url": "duckdb://", "table": "t"}, "reports": [{"id": "r", "schedule": schedule}]})
    assert str(caught.value) == (f"agentdigest.toml: reports[0].schedule: invalid cron expression {schedule!r}: {says}; "
                                 "expected e.g. '0 9 * * mon'")


@pytest.mark.parametrize("url", ["postgres://reports@db/events", "postgres://reports:${HOME}@db:5432/events",
                                 "postgres://reports@db1:5432,db2:5432/events?target_session_attrs=read-write",
                                 "postgres://reports:${HOME}@[::1]:5433,db2/events"])
def test_a_postgres_scheme_ledger_url_is_accepted_as_the_source_url_is(url):
    # Found in a README audit: the source took postgres:// (as libpq and DESIGN.md write it) and the ledger
    # refused it, "unknown database driver 'postgres'", though the ledger's engine maps it to the driver.
    cfg = parse_config({"source": {"url": "duckdb://", "table": "t"}, "ledger": {"url": url}, "reports": [{"id": "r"}]})
    assert cfg.ledger.url.startswith("postgres://reports")


@pytest.mark.parametrize("top,expected", [
    ('channels = ["box"]', "channels: got an array, expected a table"),
    ("channels = 5", "channels: got an integer, expected a table"),
    ('archive = "reports"', "archive: got text, expected a table"),
    ("reports = 5", "reports: got an integer, expected an array ([...])"),
    ("ledger = []", "ledger: got an array, expected a table"),
])
def test_a_section_of_another_kind_is_named(tmp_path, top, expected):
    """Found in a new-user audit: the first three were "unexpected error: AttributeError" (exit 1), `reports = 5`
    a TypeError, and the last named pydantic's class ("a table or instance of LedgerConfig")."""
    path = tmp_path / "agentdigest.toml"
    path.write_text(f'{top}\n[source]\nurl = "duckdb://events.duckdb"\ntable = "agent_events"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == f"{path}: {expected}"


def test_table_and_files_are_exclusive():
    with pytest.raises(ConfigError, match="exactly one of 'table' or 'files'"):
        parse_config({"source": {"url": "duckdb://", "table": "t", "files": "x.parquet"}, "reports": [{"id": "r"}]})


@pytest.mark.parametrize("key,value,words", [
    ("locale", "xx_YY", ["reports[0].locale", "unknown locale"]),
    ("audience", "board", ["reports[0].audience", "not a folder"]),
])
def test_presentation_settings_are_validated(key, value, words):
    with pytest.raises(ConfigError) as info:
        parse_config({"source": {"url": "duckdb://", "table": "t"}, "reports": [{"id": "r", key: value}]})
    for word in words:
        assert word in str(info.value)


def _opens(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@pytest.mark.parametrize("zone,words", [
    ("localtime", ["this machine's zone", "name the place"]),
    ("Factory", ["placeholder", "name the place"]),
    ("posixrules", ["template", "America/New_York"]),
    ("right/Europe/Berlin", ["leap seconds", "27 s", "use 'Europe/Berlin'"]),
])
def test_a_zone_file_that_names_no_place_is_refused(zone, words):
    """Found in a scheduling audit: ZoneInfo opens these files of the zone folder, so they passed as IANA names;
    'localtime' gives each host its own periods, and a right/ zone's midnights are 27 s late."""
    if not _opens(zone):
        pytest.skip(f"{zone} is not in this machine's time zone folder (refused anyway, as unknown)")
    with pytest.raises(ConfigError) as info:
        parse_config({"source": {"url": "duckdb://", "table": "t"}, "reports": [{"id": "r", "timezone": zone}]})
    assert "reports[0].timezone" in str(info.value)
    for word in words:
        assert word in str(info.value)
    assert parse_config({"source": {"url": "duckdb://", "table": "t"},  # the place itself stays valid
                         "reports": [{"id": "r", "timezone": "Europe/Berlin"}]}).reports[0].timezone == "Europe/Berlin"


def test_custom_template_folder_is_relative_to_the_config(tmp_path):
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "report.html.j2").write_text('{% extends "executive.html.j2" %}')
    path = tmp_path / "agentdigest.toml"
    path.write_text('[source]\nurl = "duckdb://"\ntable = "t"\n[[reports]]\nid = "r"\naudience = "templates"\n')
    assert load_config(path).reports[0].audience == str(tmp_path / "templates")


@pytest.mark.parametrize("flag", [["--period", "2026-W47"], ["--force"], ["--test-to", "a@example.com"]])
def test_due_refuses_options_it_would_ignore(workdir, flag):
    result = _run(workdir, GOOD, "--due", *flag)
    assert result.returncode == 2
    assert "--due" in result.stderr and flag[0] in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("title", ["Weekly\r\nBcc: x@evil.example", "Weekly\nX-Injected: 1", "Weekly\x00report", "Weekly\x1b[31m",
                                   # encoded words the email package decodes, and wrote raw (a leak audit)
                                   "Weekly =?utf-8?q?=0D=0ABcc:_x@evil.example?=", "=?utf-8?b?DQpCY2M6IHhAZXZpbC5leGFtcGxl?=",
                                   "Weekly =?utf-8?q?=00?= report"])
def test_header_bound_values_refuse_line_breaks_and_control_characters(title):
    """The title ends up in the Subject header: a line break or another control character (a NUL went raw
    into the header), also as an RFC 2047 encoded word, is refused with the key named."""
    data = {"source": {"url": "duckdb://", "table": "t"}, "reports": [{"id": "r", "title": title}]}
    with pytest.raises(ConfigError, match=r"reports\[0\]\.title: .*(line breaks|control characters)"):
        parse_config(data, "agentdigest.toml")


@pytest.mark.parametrize("title", ["", "   ", "\t"])
def test_a_blank_title_is_refused(title):
    """Found in a rendering audit: title = "" passed, and the Slack message's header block had no text, which
    Slack refuses (invalid_blocks), so every period failed to reach Slack; the Subject read " — week of ..."."""
    data = {"source": {"url": "duckdb://", "table": "t"}, "reports": [{"id": "r", "title": title}]}
    with pytest.raises(ConfigError, match=r"reports\[0\]\.title: .*must not be empty"):
        parse_config(data, "agentdigest.toml")


def test_check_reaches_the_ledger_and_changes_nothing(workdir, tmp_path):
    """Found black-box: an unreachable PostgreSQL ledger passed `check`, then every run failed on it."""
    def check(ledger_url: str) -> subprocess.CompletedProcess:
        (workdir / "agentdigest.toml").write_text(GOOD + f'[ledger]\nurl = "{ledger_url}"\n')
        return subprocess.run([sys.executable, "-m", "agentdigest.cli", "check", "--config", "agentdigest.toml"],
                              capture_output=True, text=True, cwd=workdir, timeout=120,
                              env={**os.environ, "SMTP_URL": "smtp://127.0.0.1:1", "PGPW": "PLANTEDpw", "COLUMNS": "300"})

    fresh = check("sqlite:///state/ledger.db")
    assert f"ledger sqlite:///{workdir}/state/ledger.db: ok - not created yet" in fresh.stdout, fresh.stdout
    assert not (workdir / "state").exists()  # check created nothing
    for url in ("postgresql://reports:${PGPW}@127.0.0.1:1/none", "postgresql://reports@127.0.0.1:1/none?password=${PGPW}"):
        down = check(url)
        assert down.returncode == 1 and "Traceback" not in down.stderr
        line = next(line for line in down.stdout.splitlines() if line.startswith("ledger "))
        assert "FAILED" in line and "127.0.0.1" in line and "PLANTED" not in down.stdout + down.stderr, line


def test_check_says_no_config_ok_before_refusing_a_column_mapping_for_its_values(workdir):
    """Found trying agentdigest as a new user: latency_ms mapped to a text column printed "config ...: ok", then
    "source.columns.latency_ms: the text column ... holds values that are not numbers" (exit 2)."""
    (workdir / "e.csv").write_text("conversation_id,event_ts,event_type,lat\nc1,2026-11-20 10:00:00,message,fast\n")
    (workdir / "agentdigest.toml").write_text(GOOD.replace('url = "duckdb://events.duckdb"\ntable = "agent_events"',
                                                           'url = "duckdb://"\nfiles = "e.csv"\n[source.columns]\n'
                                                           'latency_ms = "lat"'))
    done = subprocess.run([sys.executable, "-m", "agentdigest.cli", "check", "--config", "agentdigest.toml"],
                          capture_output=True, text=True, cwd=workdir, timeout=120,
                          env={**os.environ, "SMTP_URL": "smtp://127.0.0.1:1"})
    assert done.returncode == 2, done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "agentdigest.toml: source.columns.latency_ms: " in line and "'fast'" in line, line
    assert "ok" not in done.stdout, done.stdout


@pytest.mark.parametrize("edit,code,words", [
    (lambda s: s.replace('table = "agent_events"', 'table = "agent_events"\n[source.settings]\nmemory_limt = "4GB"'), 2,
     "source.settings: unknown DuckDB setting"),
    (lambda s: s.replace("duckdb://events.duckdb", "foodb://x/y"), 2, "source.url: no engine for foodb://"),
    (lambda s: s.replace("duckdb://events.duckdb", ""), 2, "source.url: is empty (expected duckdb://"),
    (lambda s: s.replace('table = "agent_events"', 'table = "agent_events"\n[source.columns]\nevent_ts = "created"'), 2,
     "required column 'created' (mapped by source.columns.event_ts) not found"),
    (lambda s: s + '[source.spark_conf]\n"spark.master" = "yarn"\n', 2, "source.spark_conf.spark.master"),
    (lambda s: s.replace("duckdb://events.duckdb", "duckdb://missing.duckdb"), 3, "DuckDB file not found"),
], ids=["duckdb-setting", "engine", "empty-url", "column", "spark-conf", "unreachable"])
def test_check_says_the_config_is_ok_only_when_nothing_in_it_is_refused(workdir, edit, code, words):
    """Found in a new-user audit: `check` printed "config ...: ok" and then refused a [source] setting (exit 2).
    A source that cannot be reached (exit 3) leaves the config ok, and says so."""
    (workdir / "agentdigest.toml").write_text(edit(GOOD))
    done = subprocess.run([sys.executable, "-m", "agentdigest.cli", "check", "--config", "agentdigest.toml"],
                          capture_output=True, text=True, cwd=workdir, timeout=120,
                          env={**os.environ, "SMTP_URL": "smtp://127.0.0.1:1"})
    assert done.returncode == code, done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert words in line and ("agentdigest.toml" in line or code == 3), line
    assert ("ok" in done.stdout) == (code == 3), done.stdout


def test_printed_commands_carry_the_config_unless_it_is_the_default(workdir, monkeypatch):
    from agentdigest.config import command

    (workdir / "sub").mkdir()
    (workdir / "sub" / "agentdigest.toml").write_text(GOOD)
    monkeypatch.setenv("SMTP_URL", "smtp://127.0.0.1:1")
    monkeypatch.delenv("AGENTDIGEST_CONFIG", raising=False)
    monkeypatch.chdir(workdir)
    elsewhere = load_config("sub/agentdigest.toml")
    assert command(elsewhere, "resend weekly 2026-W47") == "agentdigest resend weekly 2026-W47 --config sub/agentdigest.toml"
    monkeypatch.chdir(workdir / "sub")
    assert command(load_config(), "resend weekly 2026-W47") == "agentdigest resend weekly 2026-W47"


def test_check_reports_the_latest_event_that_is_not_in_the_future(workdir):
    """Found by a new user: one event stamped 2099 made `check` say the data was fresh."""
    con = duckdb.connect(str(workdir / "events.duckdb"))
    con.execute("INSERT INTO agent_events VALUES ('e2', 'c1', TIMESTAMPTZ '2099-01-01 00:00:00+00', 'message')")
    con.close()
    (workdir / "agentdigest.toml").write_text(GOOD)
    done = subprocess.run([sys.executable, "-m", "agentdigest.cli", "check", "--config", "agentdigest.toml"],
                          capture_output=True, text=True, cwd=workdir, timeout=120,
                          env={**os.environ, "SMTP_URL": "smtp://127.0.0.1:1", "COLUMNS": "300"})
    line = next(line for line in done.stdout.splitlines() if line.startswith("source "))
    assert "2 events, latest 2026-11-20 10:00:00 UTC; 1 in the future, not counted" in line, line


@pytest.mark.parametrize("args", [["check", "--missed", "--now", "2026-11-30T12:00:00Z"], ["history"]])
def test_reading_commands_never_create_the_ledger(workdir, args):
    """Found black-box: `check --missed` and `history` created the ledger database and its tables."""
    (workdir / "agentdigest.toml").write_text(GOOD + '[ledger]\nurl = "sqlite:///state/ledger.db"\n')
    done = subprocess.run([sys.executable, "-m", "agentdigest.cli", *args, "--config", "agentdigest.toml"],
                          capture_output=True, text=True, cwd=workdir, timeout=120,
                          env={**os.environ, "SMTP_URL": "smtp://127.0.0.1:1"})
    assert "Traceback" not in done.stderr and done.returncode in (0, 1), done.stderr
    assert not (workdir / "state").exists()
    if args[0] == "check":  # nothing was ever sent: the due week is late
        assert done.returncode == 1 and "weekly" in done.stdout
    else:
        assert done.returncode == 0 and "No runs or deliveries recorded" in done.stdout


def test_an_international_domain_is_sent_in_its_ascii_form(monkeypatch) -> None:
    """Found in an email audit: a@exämple.com passed the config and failed every recipient at send time."""
    monkeypatch.setenv("SMTP_URL", "smtp://u:pw@127.0.0.1:1")
    text = GOOD.replace('"cto@example.com"', '"Zoë <zoe@exämple.com>", "ops@example.com", "hans@faß.de"')
    config = parse_config(__import__("tomllib").loads(text), "agentdigest.toml")
    # IDNA 2008: faß.de is its own domain (Python's IDNA 2003 codec sent it to fass.de; a re-check)
    assert config.channels["mail"].to == ["Zoë <zoe@xn--exmple-cua.com>", "ops@example.com", "hans@xn--fa-hia.de"]
    zwj = GOOD.replace('"cto@example.com"', '"x@a\u200db.com"')
    with pytest.raises(ConfigError, match="not a valid international name"):
        parse_config(__import__("tomllib").loads(zwj), "agentdigest.toml")


@pytest.mark.parametrize("args", [["run", "--dryrun"], ["history", "--limit", "0"], ["resend"], ["nosuchcmd"],
                                  ["history", "--limit", "99999999999999999999999"]])  # OverflowError (a re-check)
def test_a_usage_error_is_one_line(workdir, args):
    """Found in a config audit: click's boxed error panel took five lines on stderr, even in a pipe."""
    done = subprocess.run([sys.executable, "-m", "agentdigest.cli", *args], capture_output=True, text=True,
                          cwd=workdir, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("agentdigest: error: ") and "--help" in lines[0], done.stderr
    assert "╭" not in done.stderr and done.stdout == ""
    assert "Input should" not in done.stderr, done.stderr  # Typer's pydantic words (a new-user review)
    if args[:2] == ["history", "--limit"]:
        assert "Invalid value for '--limit': expected " in lines[0], lines[0]


def test_an_archive_that_cannot_be_written_fails_check_and_is_one_line_in_run(workdir):
    """Found in a config audit: an archive path naming a file (or a read-only or full disk) passed check, and
    every run ended "unexpected error: NotADirectoryError"."""
    text = GOOD + '\n[archive]\npath = "events.duckdb"\n'
    (workdir / "agentdigest.toml").write_text(text)
    env = {**os.environ, "SMTP_URL": "smtp://u:pw@127.0.0.1:1"}
    check = subprocess.run([sys.executable, "-m", "agentdigest.cli", "check", "--config", "agentdigest.toml"],
                           capture_output=True, text=True, cwd=workdir, env=env, timeout=120)
    assert check.returncode == 1 and "archive" in check.stdout and "is not a folder" in check.stdout, check.stdout
    run = _run(workdir, None)
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 1 and len(lines) == 1, run.stderr
    assert "cannot write" in lines[0] and "[archive] path" in lines[0] and "unexpected" not in lines[0]


@pytest.mark.parametrize(("args", "words"), [
    (["--period", "9999-W52"], ["--period", "out of range"]),
    (["--due", "--now", "0001-01-01T00:00:00+00:00"], ["--now", "out of range"]),
    (["--format", ","], ["--format", "names no format"]),  # rendered nothing, exit 0
    (["--archive", ""], ["--archive", "empty"]),  # archived into the working folder
    (["--due", "--now", "2026-11-23T08:30"], ["--now", "no UTC offset"]),  # read as UTC: another week in Berlin
    (["--due", "--now", "2026-11-23Z"], ["--now", "give the time too"]),  # said "no UTC offset: add Z"
])
def test_input_that_names_nothing_is_an_input_error(workdir, args, words):
    """Found in a config audit: these ended "unexpected error: OverflowError", exit 1."""
    done = _run(workdir, GOOD, *args)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert all(word in lines[0] for word in words), lines[0]


def test_a_config_saved_with_a_byte_order_mark_reads(workdir):
    """Found in a config audit: Notepad's BOM read as "invalid TOML at line 1, column 1"."""
    (workdir / "agentdigest.toml").write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    assert _run(workdir, None).returncode == 0


def test_an_outbox_path_naming_a_file_fails_check(workdir):
    """Found in a config audit: check called it writable and the delivery failed "Not a directory"."""
    text = GOOD.replace('path = "outbox"', 'path = "events.duckdb"')
    (workdir / "agentdigest.toml").write_text(text)
    check = subprocess.run([sys.executable, "-m", "agentdigest.cli", "check", "--config", "agentdigest.toml"],
                           capture_output=True, text=True, cwd=workdir, timeout=120,
                           env={**os.environ, "SMTP_URL": "smtp://u:pw@127.0.0.1:1"})
    assert check.returncode == 1 and "channel box: FAILED" in check.stdout and "is not a folder" in check.stdout


@pytest.mark.parametrize("url", [
    "postgresql://reports:Zq9Se cretPW77@127.0.0.1:1/events",   # a space
    "postgresql://reports:Zq9Se/cretPW77@127.0.0.1:1/events",   # a slash
    "postgresql://reports@127.0.0.1:1/events?client_secret=Zq9SecretPW77",
    "postgresql://reports@127.0.0.1:1/events?aws_secret_access_key=Zq9SecretPW77",
    "postgresql://reports@127.0.0.1:1/events?passphrase=Zq9SecretPW77",
])
def test_a_database_url_from_the_environment_never_shows_its_secret(workdir, url):
    """Found in a re-check: a DATABASE_URL-style variable whose password held a space or a slash (not
    URL-encoded) was printed whole in the error, and so were client_secret, secret_key, passphrase... values."""
    text = GOOD.replace('url = "duckdb://events.duckdb"', 'url = "${DBURL}"')
    for command in (["check"], ["run", "--dry-run"]):
        (workdir / "agentdigest.toml").write_text(text)
        done = subprocess.run([sys.executable, "-m", "agentdigest.cli", *command, "--config", "agentdigest.toml"],
                              capture_output=True, text=True, cwd=workdir, timeout=120,
                              env={**os.environ, "SMTP_URL": "smtp://u:pw@127.0.0.1:1", "DBURL": url})
        assert done.returncode != 0
        assert "Zq9Se" not in done.stdout + done.stderr and "cretPW77" not in done.stdout + done.stderr, done.stderr


def test_a_read_only_ledger_fails_check(workdir):
    """Found in a scheduling audit: check said "ok - reachable, schema version 3" for a ledger no run could
    write (every run then failed to record what it sent). Made immutable: root may write any mode."""
    from conftest import skip_or_fail

    (workdir / "agentdigest.toml").write_text(GOOD + '\n[ledger]\nurl = "sqlite:///ledger.db"\n')
    env = {**os.environ, "SMTP_URL": "smtp://u:pw@127.0.0.1:1"}
    first = subprocess.run([sys.executable, "-m", "agentdigest.cli", "run", "--config", "agentdigest.toml"],
                           capture_output=True, text=True, cwd=workdir, timeout=120, env=env)
    assert first.returncode == 0 and (workdir / "ledger.db").exists(), first.stderr

    def check() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "agentdigest.cli", "check", "--config", "agentdigest.toml"],
                              capture_output=True, text=True, cwd=workdir, timeout=120, env=env)

    assert "ledger sqlite:///ledger.db: ok" in check().stdout.replace(str(workdir) + "/", "")
    if subprocess.run(["chattr", "+i", str(workdir / "ledger.db")], capture_output=True).returncode != 0:
        skip_or_fail("chattr +i is not available here (needs root and a file system with the immutable flag)")
    try:
        done = check()
    finally:
        subprocess.run(["chattr", "-i", str(workdir / "ledger.db")], check=True)
    assert done.returncode == 1 and "cannot be written" in done.stdout and "read-only" in done.stdout, done.stdout


def test_a_ledger_whose_folder_is_a_file_fails_check_and_is_one_line_in_run(workdir):
    """Found in a config re-check: check said "not created yet; the first run creates it", and the run ended
    "unexpected error: FileExistsError"."""
    (workdir / "agentdigest.toml").write_text(GOOD + '\n[ledger]\nurl = "sqlite:///events.duckdb/ledger.db"\n')
    check = subprocess.run([sys.executable, "-m", "agentdigest.cli", "check", "--config", "agentdigest.toml"],
                           capture_output=True, text=True, cwd=workdir, timeout=120,
                           env={**os.environ, "SMTP_URL": "smtp://u:pw@127.0.0.1:1"})
    assert check.returncode == 1 and "ledger" in check.stdout and "is not a folder" in check.stdout, check.stdout
    run = subprocess.run([sys.executable, "-m", "agentdigest.cli", "run", "--config", "agentdigest.toml"],
                         capture_output=True, text=True, cwd=workdir, timeout=120,
                         env={**os.environ, "SMTP_URL": "smtp://u:pw@127.0.0.1:1"})
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 1 and len(lines) == 1 and "cannot create the ledger" in lines[0], run.stderr


def test_a_bare_command_shows_the_help_without_an_empty_error(workdir):
    """Found in a config re-check: "agentdigest" alone printed the help and "agentdigest: error:  (see ...)"."""
    done = subprocess.run([sys.executable, "-m", "agentdigest.cli"], capture_output=True, text=True, cwd=workdir, timeout=120)
    assert done.returncode == 2 and "Usage" in done.stdout + done.stderr and "error:" not in done.stdout + done.stderr


@pytest.mark.parametrize("url", ["bogus://reports:${SRC_PW}@db.example/events",
                                 "postgresql://reports:${SRC_PW}@[::1/events"])
def test_verbose_traceback_masks_url_passwords(workdir, url):
    """Found in a security audit: --verbose printed the traceback as it was, and a library's exception
    in it quoted the source URL with its password ("Don't know how to connect to 'bogus://reports:...@'")."""
    result = _run(workdir, GOOD.replace("duckdb://events.duckdb", url), "--verbose", env={"SRC_PW": "Zq9Verbose-s3cret"})
    assert result.returncode == 2 and "Traceback" in result.stderr, result.stderr
    assert "Zq9Verbose" not in result.stderr and "reports:***@" in result.stderr


@pytest.mark.parametrize(("key", "char"), [("title", "\u202e"), ("title", "\u2067"), ("title", "\u200b"),
                                           ("title", "\ufeff"), ("subject", "\u202a"),
                                           # found in a re-check: these passed
                                           ("title", "\u2060"), ("title", "\u2061"), ("subject", "\u2064"),
                                           ("title", "\u00ad"), ("title", "\ufff9"), ("subject", "\ufffb"),
                                           ("title", "\u206e")])
def test_invisible_formatting_characters_in_a_subject_are_refused(workdir, key, char):
    """Found in a leak audit: bidi overrides and isolates, a zero-width space or a BOM in a title or subject went
    into the email's Subject header, where they reorder or hide what it shows ("Invoice \u202egnp.exe"). A word
    joiner, an invisible operator or a soft hyphen splits a word unseen ("In\u2060voice"), an interlinear
    annotation hides the text between its marks, and the deprecated U+206A-U+206F change how text is shaped."""
    value = f"Weekly{char}report" if key == "title" else f"{{title}}{char} {{period_label}}"
    result = _run(workdir, GOOD.replace('channels = ["box"]', f'channels = ["box"]\n{key} = "{value}"'))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert f"reports[0].{key}" in lines[0] and f"invisible formatting character (U+{ord(char):04X}" in lines[0], lines[0]


def test_joiners_and_direction_marks_in_a_title_stay_allowed(workdir):
    """ZWNJ and ZWJ (Persian words, emoji), LRM/RLM and the Arabic letter mark (RLM's Arabic counterpart), and
    the Mongolian vowel separator (it picks a letter's final form) are text, not tricks: a title holding them runs."""
    title = ("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 \U0001f469\u200d\U0001f4bb \u200eQ4\u200f "
             "\u062a\u0642\u0631\u064a\u0631 \u061c2026 \u1828\u180e\u1820")
    result = _run(workdir, GOOD.replace('channels = ["box"]', f'channels = ["box"]\ntitle = "{title}"'))
    assert result.returncode == 0, result.stderr


# --- Every setting given what it does not take: said in the project's words, naming its key, on one line -----------

#: pydantic's own wording (or its name), which no config error may carry: the messages say what was expected in
#: the config file's words (found in a config audit: "Input should be greater than 0", "Input should be a finite
#: number", "got text, input should be a valid integer", "source.files.str: ... a valid string").
PYDANTIC_WORDS = ("input should", "string should", "list should", "dictionary should", "extra inputs",
                  "value error,", "assertion failed,", "validation error", "type=", "pydantic", "field required")

WALK_BASE = {
    "source": {"url": "duckdb://", "table": "t"},
    "archive": {"path": "reports"},
    "ledger": {"url": "sqlite:///agentdigest.db"},
    "alarms": {"channel": "box"},
    "channels": {"box": {"type": "outbox", "path": "outbox"},
                 "mail": {"type": "email", "to": ["cto@example.com"], "from": "reports@example.com",
                          "smtp_url": "smtp://127.0.0.1:25"},
                 "chat": {"type": "slack", "webhook_url": "http://127.0.0.1:9/hook"},
                 "wh": {"type": "webhook", "url": "https://example.com/in"}},
    "reports": [{"id": "weekly", "channels": ["box"]}],
}


def _walked_settings() -> list[tuple[tuple, str]]:
    """(where the section is in WALK_BASE, key) for every setting of every section, read from the models, so a
    setting added later is walked too."""
    from agentdigest.config import (CHANNEL_SETTINGS, AlarmsConfig, ArchiveConfig, LedgerConfig, ReportConfig,
                                    SourceConfig)

    sections = [(("source",), SourceConfig), (("archive",), ArchiveConfig), (("ledger",), LedgerConfig),
                (("alarms",), AlarmsConfig), (("reports", 0), ReportConfig),
                *((("channels", name), CHANNEL_SETTINGS[section["type"]])
                  for name, section in WALK_BASE["channels"].items())]
    return [(where, info.alias or name) for where, model in sections for name, info in model.model_fields.items()
            if name != "type"]


WALKED = _walked_settings()
#: Values of every kind a setting may be given by mistake, out of range ones, and a very long one.
WRONG = ["", " ", "x", "4.5", "-1", -1, 0, 2.5, -2.5, 10**30, float("inf"), float("-inf"), float("nan"), True, False,
         [], ["x"], [1], {}, {"k": 1}, date(2026, 11, 23), "x" * 5000, "a\nb", "a\u2028b"]


def _key_of(where: tuple, key: str) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in (*where, key)).lstrip(".")


def _refusal(where: tuple, key: str, value, base: dict = WALK_BASE) -> ConfigError | None:
    data = copy.deepcopy(base)
    section = data
    for part in where:
        section = section[part]
    section[key] = value
    try:
        parse_config(data, "agentdigest.toml")
    except ConfigError as exc:
        return exc
    return None


@pytest.mark.parametrize("where,key", WALKED, ids=[_key_of(w, k) for w, k in WALKED])
def test_every_setting_given_a_wrong_value_is_refused_in_the_projects_words(where, key):
    full = _key_of(where, key)
    refused = 0
    for value in WRONG:
        exc = _refusal(where, key, value)
        if exc is None:
            continue
        refused += 1
        message = str(exc)
        assert not any(words in message.lower() for words in PYDANTIC_WORDS), (value, message)
        assert len(message.splitlines()) == 1 and message.startswith(f"agentdigest.toml: {exc.key}: "), message
        # its own key, an item of it, or (a rule between settings) the section, with the setting's name said
        assert (exc.key == full or exc.key.startswith((full + "[", full + "."))
                or (full.startswith(exc.key + ".") and repr(key) in message)), (value, message)
        assert "x" * 61 not in message and len(message) < 300, message  # a long value is shortened
    assert refused, f"{full} took every wrong value"


BY_HAND = [
    # each was pydantic's sentence before: "Input should be greater than 0", "... greater than or equal to 0",
    # "... less than or equal to 44640", "... a finite number", "got text, input should be a valid integer"
    (("channels", "mail"), "timeout", 0, "channels.mail.timeout: got 0, expected a number greater than 0"),
    (("channels", "wh"), "retry_budget", -2.5, "channels.wh.retry_budget: got -2.5, expected 0 or more"),
    (("channels", "box"), "timeout", 1e300, "channels.box.timeout: got 1e+300, expected at most 3600"),
    (("reports", 0), "catch_up", -1, "reports[0].catch_up: got -1, expected 0 or more"),
    (("alarms",), "grace_minutes", 100000, "alarms.grace_minutes: got 100000, expected at most 44640"),
    (("source",), "max_conversation_hours", float("inf"), "source.max_conversation_hours: got inf, expected a "
                                                          "finite number"),
    (("reports", 0), "expected_events_per_day", float("nan"), "reports[0].expected_events_per_day: got nan, "
                                                              "expected a finite number"),
    (("reports", 0), "grace_minutes", "30", "reports[0].grace_minutes: got text, expected an integer (write a "
                                            "number without quotes)"),
    (("reports", 0), "enabled", 1, "reports[0].enabled: got an integer, expected true or false"),
    (("reports", 0), "title", ["Weekly"], "reports[0].title: got an array, expected text in quotes"),
    (("reports", 0), "redact_patterns", {"ticket": 5}, "reports[0].redact_patterns.ticket: got an integer, "
                                                       "expected text in quotes"),
    (("channels", "mail"), "to", [5], "channels.mail.to[0]: got an integer, expected text in quotes"),
    (("reports", 0), "page_size", "A5", "reports[0].page_size: got 'A5', expected 'A4' or 'Letter'"),
    # was "source.files.str: got an integer, input should be a valid string", a key no file has
    (("source",), "files", 5, "source.files: got an integer, expected a file name or glob in quotes, or an "
                              "array of them"),
    (("source",), "files", ["a.parquet", 5], "source.files[1]: got an integer, expected text in quotes"),
]


@pytest.mark.parametrize("where,key,value,expected", BY_HAND, ids=[case[3].split(": got")[0] for case in BY_HAND])
def test_a_wrong_value_is_said_as_written_by_hand(where, key, value, expected):
    base = {**WALK_BASE, "source": {"url": "duckdb://"}} if key == "files" else WALK_BASE  # files, not a table
    assert str(_refusal(where, key, value, base)) == f"agentdigest.toml: {expected}"


def test_a_plugin_settings_bounds_and_lengths_are_said_in_the_projects_words(monkeypatch):
    """A plug-in's settings may use any of pydantic's constraints: "String should have at least 1 character" and
    the like were passed on as they were."""
    import enum
    from typing import Literal

    from pydantic import Field

    from agentdigest.config import PLUGIN_CHANNEL_SETTINGS, ChannelSettings

    class Colour(enum.Enum):
        GREY = "grey"
        WHITE = "white"

    class Pigeon(ChannelSettings):
        type: Literal["pigeon"]
        loft: str = Field(min_length=1, max_length=8)
        birds: int = Field(2, gt=0, multiple_of=2)
        ring: str = Field("ab", pattern=r"^[a-z]+$")
        eggs: int = 0  # not strict: 2.0 is taken, 2.5 is not
        colour: Colour = Colour.GREY

    monkeypatch.setitem(PLUGIN_CHANNEL_SETTINGS, "pigeon", Pigeon)
    for settings, expected in [
        ({"loft": ""}, "channels.birds.loft: got empty text, expected at least 1 character"),
        ({"loft": "a" * 5000}, "channels.birds.loft: got text of 5,000 characters, expected at most 8 characters"),
        ({"loft": "roof", "birds": 0}, "channels.birds.birds: got 0, expected a number greater than 0"),
        ({"loft": "roof", "birds": 3}, "channels.birds.birds: got 3, expected a multiple of 2"),
        ({"loft": "roof", "wings": 2}, "channels.birds.wings: unknown key"),
        ({"loft": "roof", "ring": "A1"}, "channels.birds.ring: got 'A1', expected text matching the pattern "
                                         "'^[a-z]+$'"),
        ({"loft": "roof", "eggs": 2.5}, "channels.birds.eggs: got a decimal number, expected an integer"),
        ({"loft": "roof", "colour": "red"}, "channels.birds.colour: got 'red', expected 'grey' or 'white'"),
    ]:
        data = {"source": {"url": "duckdb://", "table": "t"}, "reports": [{"id": "r"}],
                "channels": {"birds": {"type": "pigeon", **settings}}}
        with pytest.raises(ConfigError) as info:
            parse_config(data, "agentdigest.toml")
        assert str(info.value) == f"agentdigest.toml: {expected}"


# --- Values a message repeats: shortened, on one line, a variable shown as written ---------------------------------

LONG = "Z" * 5000
#: Settings whose message repeats the value given, each with a value 5,000 characters long in it.
ECHOED = [
    (("reports", 0), "timezone", LONG), (("reports", 0), "id", "-" + LONG), (("reports", 0), "schedule", LONG),
    (("reports", 0), "locale", LONG), (("reports", 0), "period", LONG), (("reports", 0), "audience", LONG),
    (("reports", 0), "agents", ["a*" + LONG]), (("reports", 0), "channels", [LONG]), (("alarms",), "channel", LONG),
    (("channels", "mail"), "to", [LONG]), (("channels", "mail"), "from", LONG), (("channels", "mail"), "ca_file", LONG),
    (("source",), "epoch_unit", LONG), (("source",), "columns", {LONG: "x"}),
    (("ledger",), "url", f"postgresql+{LONG}://db/x"),
]


@pytest.mark.parametrize("where,key,value", ECHOED, ids=[_key_of(w, k) for w, k, _ in ECHOED])
def test_a_long_value_is_shortened_in_the_one_line(where, key, value):
    """Found in a config audit: a 5,000-character value was repeated whole in the "one line"."""
    exc = _refusal(where, key, value)
    message = str(exc)
    assert len(message.splitlines()) == 1 and len(message) < 300, message
    # some of it, to recognise it (a driver's name is said in lower case)
    assert "Z" * 61 not in message.upper() and "Z" * 20 in message.upper(), message
    assert " characters)" in message and "…" in message, message


def test_a_long_value_is_cut_after_its_first_characters_and_a_path_before_its_last():
    assert str(_refusal(("reports", 0), "timezone", LONG)) == (
        f"agentdigest.toml: reports[0].timezone: unknown timezone '{'Z' * 60}'… (5,000 characters) (expected an "
        "IANA name like Europe/Berlin)")
    assert str(_refusal(("channels", "mail"), "ca_file", "/" + LONG + "/corp-ca.pem")) == (
        f"agentdigest.toml: channels.mail.ca_file: no such file: …'{'Z' * 48}/corp-ca.pem' (5,013 characters)")
    assert str(_refusal(("reports", 0), "page_size", LONG)) == (
        f"agentdigest.toml: reports[0].page_size: got '{'Z' * 60}'… (5,000 characters), expected 'A4' or 'Letter'")


@pytest.mark.parametrize("where,key,value,shown", [
    (("reports", 0), "timezone", "${LONG_SECRET}", "unknown timezone '${LONG_SECRET}' ("),
    (("reports", 0), "period", "${LONG_SECRET}", "got '${LONG_SECRET}', "),
    (("channels", "mail"), "to", ["${LONG_SECRET}"], "got '${LONG_SECRET}'"),
    # cut after the variable, and inside it: what is shown is what the file says, never the secret
    (("reports", 0), "timezone", "Europe/${LONG_SECRET}" + "y" * 70,
     f"unknown timezone 'Europe/${{LONG_SECRET}}{'y' * 39}'… (91 characters)"),
    (("reports", 0), "id", "-" + "x" * 49 + "${LONG_SECRET}", f"'-{'x' * 49}${{LONG_SEC'… (64 characters) is not a "
                                                                 "report id"),
])
def test_a_shortened_value_shows_a_variable_as_written(monkeypatch, where, key, value, shown):
    """A value from an environment variable may be a secret: shortening never cuts into it, it is shown as the
    ${VAR} written in the file."""
    monkeypatch.setenv("LONG_SECRET", "S3cretPart-" * 500)
    message = str(_refusal(where, key, value))
    assert shown in message and "S3cret" not in message, message


@pytest.mark.parametrize("where,key,value", [
    (("reports", 0), "schedule", "0 9 * * ${MIXED_SECRET}"),  # APScheduler repeats the field in lower case
    (("ledger",), "url", "sqlite+${MIXED_SECRET}:///x.db"),  # the driver is said in lower case
    (("ledger",), "url", "postgresql+${MIXED_SECRET}://db/x"),
], ids=["schedule", "sqlite-driver", "postgresql-driver"])
def test_a_variable_repeated_in_another_case_is_still_shown_as_written(monkeypatch, where, key, value):
    """A message that repeats a value in lower case (a cron field, a database driver) showed a secret from an
    environment variable: only its exact spelling was put back as the ${VAR} written in the file."""
    monkeypatch.setenv("MIXED_SECRET", "Zq9SecretPW77xY")
    message = str(_refusal(where, key, value))
    assert "${MIXED_SECRET}" in message and "secretpw77" not in message.lower(), message


@pytest.mark.parametrize("char", ["\n", "\r\n", "\x85", "\u2028", "\x1b[31m", "\x0b", "\u202e"])
@pytest.mark.parametrize("where,key,value", [
    (("reports", 0), "timezone", "a{}b"), (("reports", 0), "locale", "a{}b"), (("reports", 0), "period", "a{}b"),
    (("reports", 0), "channels", ["a{}b"]), (("alarms",), "channel", "a{}b"), (("channels", "mail"), "ca_file", "a{}b"),
    (("source",), "columns", {"a{}b": "x"}), (("source",), "epoch_unit", "a{}b"), (("reports", 0), "agents", ["*a{}b"]),
], ids=lambda v: v if isinstance(v, str) else None)
def test_a_control_character_in_a_repeated_value_cannot_split_the_line(where, key, value, char):
    """A line break (Unicode's too) or another control character in a value a message repeats is shown escaped,
    as a key's is (config_errors.key_part): a raw one split the one line (found in a config audit: ca_file = "a\nb"
    said "no such file: a" and, on a line of its own, "b")."""
    value = ([item.format(char) for item in value] if isinstance(value, list)
             else {k.format(char): v for k, v in value.items()} if isinstance(value, dict) else value.format(char))
    message = str(_refusal(where, key, value))
    assert message.isprintable() and len(message.splitlines()) == 1, repr(message)
    assert repr(char)[1:-1] in message, message


# --- Keys and lists a message repeats: shortened as values are ----------------------------------------------------

KEY = "K" * 5000
WIDE = "日本語🤖" * 1250  # 5,000 characters of CJK and emoji


def _nested(depth: int) -> dict:
    table: dict = {"v": "${NOT_SET_H_KEYS}"}
    for i in range(depth):
        table = {f"level{i:03d}": table}
    return table


def _outboxes(names) -> dict:
    return {name: {"type": "outbox", "path": "outbox"} for name in names}


#: (what, where in WALK_BASE, key, value, the error's key as it begins, words of what was expected)
LONG_KEYS = [
    ("an unknown key at the top", (), KEY, 1, "'KKKK", "unknown key"),
    ("an unknown key in [source]", ("source",), KEY, 1, "source.'KKKK", "unknown key"),
    ("an unknown key in a report", ("reports", 0), KEY, 1, "reports[0].'KKKK", "unknown key"),
    ("an unknown key in a channel", ("channels", "box"), KEY, 1, "channels.box.'KKKK", "unknown key"),
    ("an unknown table in [ledger]", ("ledger",), KEY, {"x": 1}, "ledger.'KKKK", "unknown key"),
    ("an unknown key close to a known one", ("source",), "tabl" + "e" * 5000, 1, "source.'tableee", "unknown key"),
    ("an unknown key with a line break", ("source",), "a\n" + KEY, 1, "source.'a\\nKKKK", "unknown key"),
    ("an unknown key of CJK and emoji", ("source",), WIDE, 1, "source.'日本語🤖日本語🤖", "unknown key"),
    ("a channel of an unknown type", ("channels",), KEY, {"type": "pigeon"}, "channels.'KKKK",
     "unknown channel type 'pigeon' (expected one of: outbox, email"),
    ("a channel without a type", ("channels",), KEY, {"path": "x"}, "channels.'KKKK", "is missing 'type'"),
    ("a channel name that is no id", ("channels",), "-" + KEY, {"type": "outbox"}, "channels.'-KKKK",
     "a channel name is letters"),
    ("a channel name of CJK and emoji", ("channels",), WIDE, {"type": "outbox"}, "channels.'日本語🤖",
     "a channel name is letters"),
    ("a channel name with a line break", ("channels",), "a\nb" + KEY, {"type": "outbox"}, "channels.'a\\nbKKKK",
     "a channel name is letters"),
    ("a channel missing a setting", ("channels",), KEY, {"type": "email", "from": "a@example.com",
                                                         "smtp_url": "smtp://127.0.0.1"}, "channels.'KKKK", ".to: is required"),
    ("an unset variable in a channel", ("channels",), KEY, {"type": "webhook", "url": "${NOT_SET_H_KEYS}"},
     "channels.'KKKK", ".url: environment variable NOT_SET_H_KEYS is not set"),
    ("a NUL in a channel's folder", ("channels",), KEY, {"type": "outbox", "path": "a\x00b"}, "channels.'KKKK",
     ".path: a path cannot hold a NUL character"),
    ("a literal secret in a channel", ("channels",), KEY, {"type": "webhook", "url": "https://example.com",
                                                          "secret": "hunter2"}, "channels.'KKKK", ".secret: a secret written"),
    ("an engine setting", ("source",), "settings", {KEY: [1]}, "source.settings.'KKKK", "expected text, a number"),
    ("an unset variable in an engine setting", ("source",), "settings", {KEY: "${NOT_SET_H_KEYS}"},
     "source.settings.'KKKK", "NOT_SET_H_KEYS is not set"),
    ("a Spark secret", ("source",), "spark_conf", {"password" + KEY: "hunter2"}, "source.spark_conf.'passwordKKKK",
     "a secret written into the file"),
    ("a column of another kind", ("source",), "columns", {KEY: 5}, "source.columns.'KKKK", "expected text in quotes"),
    ("a redaction pattern of another kind", ("reports", 0), "redact_patterns", {KEY: 5},
     "reports[0].redact_patterns.'KKKK", "expected text in quotes"),
    ("an unset variable 300 tables deep", ("source",), "zz", _nested(300), "source.zz.level299.level298",
     "NOT_SET_H_KEYS is not set"),
    ("a variable of a name of 5,000 characters", ("reports", 0), "title", "${" + KEY + "}", "reports[0].title",
     "environment variable 'KKKK"),
    ("a subject field", ("reports", 0), "subject", "{" + KEY + "}", "reports[0].subject", "unknown field '{KKKK"),
    ("a subject field's format", ("reports", 0), "subject", "{title:" + KEY + "}", "reports[0].subject",
     "fields take no format spec"),
    ("a host of the ledger", ("ledger",), "url", "postgresql://db1," + KEY + ":99999/x", "ledger.url",
     "port '99999' is not a number"),
    ("an unknown channel among 500", (), "channels", _outboxes(f"ch{i:03d}" for i in range(500)),
     "reports[0].channels[0]", "unknown channel 'box' (expected one of: ch000, ch001"),
    ("an unknown channel among long names", (), "channels", _outboxes(f"c{i}{KEY}" for i in range(5)),
     "reports[0].channels[0]", "unknown channel 'box' (expected one of: 'c0KKKK"),
    ("a report naming 500 unknown channels", ("reports", 0), "channels", [f"no{KEY}{i}" for i in range(500)],
     "reports[0].channels[0]", "unknown channel 'noKKKK"),
    ("a channel named from a variable", ("reports", 0), "channels", ["${H_KEYS_SECRET}"] * 500,
     "reports[0].channels", "channel '${H_KEYS_SECRET}' is listed twice"),
]


@pytest.mark.parametrize("where,key,value,key_begins,expected", [case[1:] for case in LONG_KEYS],
                         ids=[case[0] for case in LONG_KEYS])
def test_a_long_key_or_list_is_shortened_in_the_one_line(monkeypatch, tmp_path, where, key, value, key_begins, expected):
    """Found in a config audit: values were shortened (``shown``), but a key of 5,000 characters (an unknown key, a
    channel's name, a key of [source.settings]), a key path 300 tables deep and the known names a hint lists (500
    channels) were repeated whole in the "one line"."""
    from agentdigest.config import refuse_literal_secrets

    monkeypatch.setenv("H_KEYS_SECRET", "S3cretPart-" * 500)
    monkeypatch.delenv("NOT_SET_H_KEYS", raising=False)
    data = copy.deepcopy(WALK_BASE)
    section = data
    for part in where:
        section = section[part]
    section[key] = value
    with pytest.raises(ConfigError) as info:
        refuse_literal_secrets(data, "agentdigest.toml")  # as load_config reads a file
        parse_config(data, "agentdigest.toml", base=tmp_path)
    message = str(info.value)
    assert message.isprintable() and len(message.splitlines()) == 1, repr(message)
    assert len(message) < 300, message
    assert message.startswith(f"agentdigest.toml: {key_begins}") and info.value.key.startswith(key_begins), message
    assert message.startswith(f"agentdigest.toml: {info.value.key}: "), message
    assert expected in message, message
    assert "S3cret" not in message and "K" * 61 not in message and "level200" not in message, message
    if "KKKK" in key_begins or "日本語" in key_begins:
        assert "… (5,0" in info.value.key and " characters)" in info.value.key, message


def test_the_reports_a_hint_lists_are_shortened():
    """``run``'s unknown report among 500 listed every report id."""
    data = {"source": {"url": "duckdb://", "table": "t"}, "reports": [{"id": f"r{i:03d}"} for i in range(500)]}
    with pytest.raises(ConfigError) as info:
        parse_config(data, "agentdigest.toml").report("nope")
    message = str(info.value)
    assert len(message) < 300 and message.startswith("agentdigest.toml: unknown report 'nope' (expected one of: "
                                                      "r000, r001, "), message
    assert message.endswith(", r020 and 479 more)"), message


def test_a_long_key_through_the_command(workdir):
    """As a user sees it: one line on stderr, exit 2."""
    text = GOOD.replace('table = "agent_events"', f'table = "agent_events"\n"a{KEY}" = 1')
    result = _run(workdir, text)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and len(result.stderr) < 300, result.stderr
    assert f"agentdigest.toml: source.'a{'K' * 59}'… (5,001 characters): unknown key" in result.stderr, result.stderr


@pytest.mark.parametrize("written, expected", [
    ("events.duckdb", "expected url = \"duckdb://events.duckdb\" for a DuckDB file"),
    ("data/events.parquet", "expected url = \"duckdb://\" and files = ['data/events.parquet'] for Parquet or CSV"),
    ("${EVENTS_DB}", "expected url = \"duckdb://${EVENTS_DB}\" for a DuckDB file"),  # as written, never its value
    ("reports@db.example.com/events", "expected a URL such as duckdb://events.duckdb, postgresql://"),
])
def test_a_source_url_without_a_scheme_is_refused_and_creates_nothing(workdir, written, expected):
    """Found installing agentdigest as a new user with a DuckDB file of their own: url = "events.duckdb" (a path, no
    duckdb://) passed the config and went to ibis.connect, which read it relative to the shell's folder, not the
    config's, and created an empty database there: check said "table 'agent_events' not found in events.duckdb"
    of the right file, and left an empty events.duckdb behind in the folder it was run from."""
    conf = workdir / "conf"
    conf.mkdir()
    (workdir / "events.duckdb").rename(conf / "events.duckdb")
    (conf / "agentdigest.toml").write_text(GOOD.replace("duckdb://events.duckdb", written))
    elsewhere = workdir / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run([sys.executable, "-m", "agentdigest.cli", "check", "--config", str(conf / "agentdigest.toml")],
                          capture_output=True, text=True, cwd=elsewhere, timeout=120,
                          env={**os.environ, "SMTP_URL": "smtp://127.0.0.1:1", "EVENTS_DB": "events.duckdb"})
    assert done.returncode == 2, done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"agentdigest: error: {conf / 'agentdigest.toml'}: source.url: "), line
    assert "is not a URL" in line and expected in line, line
    assert "ok" not in done.stdout and list(elsewhere.iterdir()) == [], (done.stdout, list(elsewhere.iterdir()))


@pytest.mark.parametrize("written, meant", [
    ("europe/berlin", "Europe/Berlin"), ("Berlin", "Europe/Berlin"), ("New York", "America/New_York"),
    ("Europe/Berln", "Europe/Berlin"), ("America/Sao Paulo", "America/Sao_Paulo"),
    ("CEST", None), ("GMT+1", None), ("Mars/Olympus", None),
])
def test_a_mistyped_timezone_is_asked_about_the_place_it_likely_means(monkeypatch, written, meant):
    """Found installing agentdigest as a new user: `timezone = "europe/berlin"`, `"Berlin"` and `"Europe/Berln"`
    were each "unknown timezone ... (expected an IANA name like Europe/Berlin)", the name meant never given (for a
    New York reader, "like Europe/Berlin" was no help). Never asked of a value from a variable (it may be a secret)."""
    said = str(_refusal(("reports", 0), "timezone", written))
    assert said.startswith(f"agentdigest.toml: reports[0].timezone: unknown timezone {written!r} (expected an IANA "
                           "name"), said
    assert said.endswith(f": did you mean {meant!r}?)" if meant else "like Europe/Berlin)"), said
    monkeypatch.setenv("ZONE", written)
    assert "did you mean" not in str(_refusal(("reports", 0), "timezone", "${ZONE}"))
