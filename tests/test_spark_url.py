"""The Spark master of a ``pyspark://`` URL, checked before Spark starts.

Found following README's Spark instructions with a user's mistakes: ``pyspark://local[two]``, a standalone master
without its ``spark://`` (``pyspark://spark-master:7077``), ``pyspark://YARN`` and ``pyspark://local[0]`` all started
Java, then failed as exit 3 "cannot start Spark (SparkException: Could not parse Master URL: ...; Spark's log: ...)",
a source that could not be reached, 5-10 s later and with a log file left behind, instead of a config error (exit 2)
naming ``source.url``. No JVM is started here: these tests need neither pyspark nor Java.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

from agentdigest.errors import InputError
from agentdigest.spark_url import check_master
from conftest import skip_or_fail

FORMS = "expected pyspark://local[N] (or local[*]), pyspark://spark://host:7077, pyspark://yarn"


@pytest.mark.parametrize("master", [
    "local", "local[1]", "local[2]", "local[*]", "local[2,3]", "local[*, 4]", "local-cluster[2, 1, 1024]",
    "spark://spark-master:7077", "spark://h1:7077,h2:7077", "spark://[::1]:7077", "yarn", "k8s://https://k8s:443",
])
def test_masters_spark_accepts_pass(master):
    """Spark 4.0's own forms (SparkMasterRegex, SparkSubmit's yarn / spark / k8s / local) are left to Spark."""
    assert check_master(master) is None


@pytest.mark.parametrize("url,said", [
    ("pyspark://local[two]", "Spark has no master 'local[two]' (" + FORMS),
    ("pyspark://spark-master:7077", "; a standalone master is pyspark://spark://spark-master:7077"),
    ("pyspark://YARN", "; Spark reads pyspark://yarn"),
    ("pyspark://spark://spark-master", "its port too (7077 by default)"),
    ("pyspark://mesos://m:5050", "Spark has no master 'mesos://m:5050' (" + FORMS),  # gone in Spark 4
    ("pyspark://local[0]", "pyspark://local[0] runs Spark on no thread (expected local[N] with N of 1 or more"),
    # the master as the URL, without pyspark://: was "no engine for spark://", and for spark://local[2] exit 3,
    # "cannot connect ('2' does not appear to be an IPv4 or IPv6 address)"
    ("spark://spark-master:7077",
     "Spark is read through pyspark:// with its master after it (expected pyspark://spark://spark-master:7077)"),
    ("spark://local[2]", "Spark is read through pyspark:// with its master after it (expected pyspark://local[2])"),
])
def test_a_wrong_master_is_a_config_error_before_spark_starts(tmp_path, url, said):
    """Through the CLI, as a user meets it: one line naming the file and source.url, exit 2, no "config ok",
    and no Spark log left in TMPDIR (Spark never started)."""
    (tmp_path / "events.parquet").write_bytes(b"PAR1")
    (tmp_path / "agentdigest.toml").write_text(f'[source]\nurl = "{url}"\nfiles = ["events.parquet"]\n'
                                               '[[reports]]\nid = "r"\n')
    done = subprocess.run([sys.executable, "-m", "agentdigest.cli", "check", "--config", "agentdigest.toml"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={**os.environ, "TMPDIR": str(tmp_path)})
    assert done.returncode == 2, done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("agentdigest: error: agentdigest.toml: source.url: "), line
    assert said in line, line
    assert "ok" not in done.stdout, done.stdout
    assert not list(tmp_path.glob("agentdigest-spark-*.log"))


def test_a_master_with_a_user_never_shows_what_precedes_the_at():
    with pytest.raises(InputError) as caught:
        check_master("reports:hunter2@spark-master:7077")
    assert "hunter2" not in str(caught.value) and "reports" not in str(caught.value)
    assert "'spark-master:7077' after the @" in str(caught.value)


@pytest.fixture
def java_and_pyspark():
    """Skips without pyspark or Java 17 (fails with CI=true), as the spark fixture does, without starting a session
    in this process: the CLI starts its own."""
    if importlib.util.find_spec("pyspark") is None:
        skip_or_fail("pyspark is not installed (pip install -e '.[spark]')")
    from agentdigest.errors import SourceError
    from agentdigest.spark_url import check_java

    try:
        check_java()
    except SourceError as exc:
        skip_or_fail(str(exc))


def _check_in(work, toml: str) -> subprocess.CompletedProcess:
    (work / "agentdigest.toml").write_text(toml)
    return subprocess.run([sys.executable, "-m", "agentdigest.cli", "check", "--config", "agentdigest.toml"],
                          capture_output=True, text=True, cwd=work, timeout=300, env={**os.environ, "TMPDIR": str(work)})


@pytest.mark.spark
def test_a_hive_catalog_without_a_metastore_is_a_config_error_and_leaves_no_metastore_db(java_and_pyspark, tmp_path):
    """README's catalog `table` with "spark.sql.catalogImplementation" = "hive" and no metastore (no hive-site.xml,
    no hive.metastore.uris) gave "source.table: table 'analytics.agent_events' not found", nothing of why, and left
    an empty Derby ./metastore_db and derby.log in the working directory (found following README's Spark
    instructions). Now the setting is refused, naming what to set, before the catalog is touched."""
    toml = ('[source]\nurl = "pyspark://local[1]"\ntable = "analytics.agent_events"\n[source.spark_conf]\n'
            '"spark.sql.catalogImplementation" = "hive"\n[[reports]]\nid = "r"\n')
    done = _check_in(tmp_path, toml)
    assert done.returncode == 2, done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert ('agentdigest.toml: source.spark_conf.spark.sql.catalogImplementation: "hive" names no metastore here'
            in line), line
    assert '"spark.hadoop.hive.metastore.uris" = "thrift://<host>:9083"' in line, line
    assert not (tmp_path / "metastore_db").exists() and not (tmp_path / "derby.log").exists()


@pytest.mark.spark
def test_a_hive_catalog_with_a_metastore_named_looks_the_table_up_there(java_and_pyspark, tmp_path):
    """A metastore named in [source.spark_conf] (here a local Derby one in its own folder) is used: the table is
    looked up there, and not found since the metastore is new (as README says of a table not there)."""
    store = tmp_path / "ms"
    toml = ('[source]\nurl = "pyspark://local[1]"\ntable = "analytics.agent_events"\n[source.spark_conf]\n'
            '"spark.sql.catalogImplementation" = "hive"\n'
            f'"spark.hadoop.javax.jdo.option.ConnectionURL" = "jdbc:derby:;databaseName={store};create=true"\n'
            '[[reports]]\nid = "r"\n')
    done = _check_in(tmp_path, toml)
    assert done.returncode == 2, done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "source.table: table 'analytics.agent_events' not found" in line, line
    assert store.is_dir() and not (tmp_path / "metastore_db").exists()


_IVY = ('<ivysettings><settings defaultResolver="r"/><resolvers>{}</resolvers></ivysettings>')


@pytest.mark.spark
@pytest.mark.parametrize("resolver,code,said", [
    # a repository that refuses the connection: the package could not be fetched, the source unreachable (exit 3)
    ('<ibiblio name="r" m2compatible="true" root="http://127.0.0.1:9/maven2/"/>', 3,
     "cannot start Spark (source.spark_conf.spark.jars.packages: org.example:nothing:1.0 could not be fetched, "
     "no repository answered; Spark's log: "),
    # a repository that answers without the package: a mistyped coordinate, a config error (exit 2)
    ('<filesystem name="r" m2compatible="true"><artifact pattern="{repo}/[organisation]/[module]/[revision]/'
     '[artifact]-[revision].[ext]"/></filesystem>', 2,
     "agentdigest.toml: source.spark_conf.spark.jars.packages: no repository Spark asked has org.example:nothing:1.0 "
     "(expected group:artifact:version"),
])
def test_a_package_spark_cannot_fetch_names_the_key(java_and_pyspark, tmp_path, resolver, code, said):
    """README's "spark.jars.packages" line (hadoop-aws for s3a://) without network said "cannot start Spark
    ([unresolved dependency: org.apache.hadoop#hadoop-aws;3.4.1: not found]; ...)", naming neither the key nor
    whether the package or the network was at fault (found trying README's Spark instructions offline). Ivy's
    settings pin the repository here, so the test never reaches the network."""
    (tmp_path / "repo").mkdir()
    (tmp_path / "ivy.xml").write_text(_IVY.format(resolver.replace("{repo}", str(tmp_path / "repo"))))
    (tmp_path / "events.parquet").write_bytes(b"")
    toml = ('[source]\nurl = "pyspark://local[1]"\nfiles = ["events.parquet"]\n[source.spark_conf]\n'
            f'"spark.jars.packages" = "org.example:nothing:1.0"\n"spark.jars.ivySettings" = "{tmp_path / "ivy.xml"}"\n'
            '[[reports]]\nid = "r"\n')
    done = _check_in(tmp_path, toml)
    assert done.returncode == code, done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert said in line, line
