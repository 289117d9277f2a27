"""The scheduler over a long life: a wall clock that jumps (or a machine that slept), many passes.

The scheduler runs in this process (its main loop on the main thread, as `agentdigest schedule` runs it), so its
clocks can be set: the wall clock that APScheduler, the daemon and a report's pass read is moved forward, while the
monotonic clock that APScheduler sleeps on is not, which is what a clock set forward or a suspended machine does.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import apscheduler.schedulers.base as aps_base
import pytest

from agentdigest import daemon as daemon_module
from agentdigest import report_worker
from agentdigest.daemon import Daemon
from schedule_helpers import cron_far_from_now, make_events, outbox, sent_files, wait_for, write_config

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


class _Shift:
    seconds = 0.0


class _ShiftedDatetime(datetime):
    """``datetime`` whose ``now`` reads the wall clock moved by ``_Shift.seconds``."""

    @classmethod
    def now(cls, tz=None):
        return datetime.now(tz) + timedelta(seconds=_Shift.seconds)


@pytest.fixture
def shifted_clock(monkeypatch):
    _Shift.seconds = 0.0
    monkeypatch.setattr(aps_base, "datetime", _ShiftedDatetime)
    monkeypatch.setattr(report_worker, "datetime", _ShiftedDatetime)
    monkeypatch.setattr(daemon_module, "datetime", _ShiftedDatetime)
    monkeypatch.setattr(daemon_module, "_wall", lambda: time.time() + _Shift.seconds)
    return _Shift


class _Events(logging.Handler):
    def __init__(self):
        super().__init__()
        self.events: list[tuple[str, str]] = []

    def emit(self, record):
        self.events.append((getattr(record, "event", ""), record.getMessage()))


def test_a_clock_set_forward_fires_the_schedule_it_passed(tmp_path, shifted_clock):
    """Found in a long-run review: a wall clock set forward a day (NTP fixing a slow clock, a VM resumed after a
    day) left APScheduler asleep on the monotonic clock until its next fire, 12 hours here; the day that fell due
    meanwhile went out only then, or was passed over. The scheduler now sees the jump and fires at once.
    Set back an hour after that, it sends nothing twice."""
    now = datetime.now(timezone.utc)
    events = make_events(tmp_path / "events.duckdb", end=now + timedelta(days=3), days=6, conversations=300)
    box = tmp_path / "outbox"
    schedule = cron_far_from_now(now)  # fires 12 h from now: not during the test, but within a day set forward
    config = write_config(tmp_path, events=events, channels=outbox("box", path=str(box)), reports=[
        {"id": "daily", "period": "day", "timezone": "UTC", "schedule": schedule, "channels": ["box"]}])
    minute, hour = (int(x) for x in schedule.split()[:2])
    fire = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if fire > now:
        fire -= timedelta(days=1)
    first = (fire.date() - timedelta(days=1)).isoformat()  # the day the catch-up sends (see expected_period)
    second = fire.date().isoformat()  # due at the next fire, 12 h away: passed by a day set forward

    handler = _Events()
    logging.getLogger("agentdigest").addHandler(handler)
    daemon = Daemon(config)
    outcome: dict[str, object] = {}

    def drive():
        try:
            wait_for(lambda: sent_files(box).get(("daily", first)), what="the catch-up")
            shifted_clock.seconds = 86400.0
            wait_for(lambda: sent_files(box).get(("daily", second)), what="the day the clock jumped past", timeout=60)
            shifted_clock.seconds = 86400.0 - 3600  # then back an hour, across the fire it just made
            wait_for(lambda: len([e for e, _ in handler.events if e == "clock_jumped"]) == 2, what="the jump back")
            wait_for(lambda: not any(w.busy or w.pending.is_set() for w in daemon.workers.values()), what="idle")
        except AssertionError as exc:
            outcome["error"] = exc
        finally:
            daemon.stop.request("SIGTERM")
            daemon.wake.set()

    helper = threading.Thread(target=drive)
    helper.start()
    try:
        assert daemon.run() == 0
    finally:
        helper.join()
        logging.getLogger("agentdigest").removeHandler(handler)
    assert "error" not in outcome, outcome.get("error")
    assert sent_files(box) == {("daily", first): 1, ("daily", second): 1}
    jumps = [message for event, message in handler.events if event == "clock_jumped"]
    assert len(jumps) == 2 and "forward by 86400 s" in jumps[0] and "back by 3600 s" in jumps[1], jumps
    assert not [e for e, _ in handler.events if e == "passed_over"]


def test_an_edited_config_is_said_once_and_used_from_the_sighup(tmp_path):
    """Found in a long-run review: the config is read at start and at SIGHUP only, and an edit without the SIGHUP
    left the scheduler running the old config while nothing said so (`check` and `history --next` read the new
    file). A heartbeat now says it once per edit; the running config is kept until the SIGHUP, and a broken edit
    that the SIGHUP refuses is not said again at each heartbeat."""
    now = datetime.now(timezone.utc)
    events = make_events(tmp_path / "events.duckdb", end=now, days=3, conversations=100)
    report = {"id": "daily", "period": "day", "timezone": "UTC", "schedule": cron_far_from_now(now), "channels": ["box"]}
    config = write_config(tmp_path, events=events, channels=outbox("box", path=str(tmp_path / "outbox")),
                          reports=[report])
    handler = _Events()
    logging.getLogger("agentdigest").addHandler(handler)
    daemon = Daemon(config)
    try:
        said = lambda event: [m for e, m in handler.events if e == event]  # noqa: E731
        for _ in range(3):
            daemon.tick()
        assert said("config_changed") == []  # untouched: quiet

        original = config.read_text()
        config.write_text(original.replace(report["schedule"], "0 3 * * *"))
        for _ in range(3):
            daemon.tick()
        changed = said("config_changed")
        assert len(changed) == 1 and str(config) in changed[0] and "SIGHUP" in changed[0], changed
        assert daemon.config.reports[0].schedule == report["schedule"]  # not used before the SIGHUP

        daemon.reload()
        assert daemon.config.reports[0].schedule == "0 3 * * *"
        for _ in range(3):
            daemon.tick()
        assert len(said("config_changed")) == 1

        config.write_text(original + "\n[[reports]\n")  # broken: the SIGHUP refuses it, and that says it
        daemon.reload()
        daemon.tick()
        assert len(said("reload_failed")) == 1 and len(said("config_changed")) == 1
        assert daemon.config.reports[0].schedule == "0 3 * * *"

        config.unlink()  # removed: said once more
        daemon.tick()
        daemon.tick()
        assert len(said("config_changed")) == 2 and "was removed" in said("config_changed")[1]
    finally:
        logging.getLogger("agentdigest").removeHandler(handler)
        daemon.ledger.close()


def test_pdfs_rendered_one_after_another_share_a_font_configuration(monkeypatch):
    """Found in a long-run review: WeasyPrint made a font configuration per PDF (Fontconfig's configuration and
    fonts loaded anew) and never gave all its memory back; the scheduler grew about 230 KB a run for as long as
    it ran. A thread now keeps one from PDF to PDF: N PDFs and 2N make as many, one, until a SIGHUP's
    forget_fonts; a template declaring its own fonts (@font-face) still gets one of its own."""
    from weasyprint.text import fonts

    from agentdigest.render import pdf

    made = []
    real_init = fonts.FontConfiguration.__init__

    def counting_init(self, *args, **kwargs):
        made.append(threading.get_ident())
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(fonts.FontConfiguration, "__init__", counting_init)
    pdf.forget_fonts()  # whatever this test process rendered before
    page = "<html><body><h1>Weekly</h1><table><tr><td>42</td><td>7 %</td></tr></table></body></html>"

    def render(count):
        for _ in range(count):
            assert pdf.render_pdf(page).startswith(b"%PDF")
        return len(made)

    assert render(3) == 1 and render(3) == 1  # N PDFs and 2N: one configuration
    other = threading.Thread(target=render, args=(2,))
    other.start()
    other.join()
    assert len(made) == 2 and made[1] != made[0]  # one per thread, not shared between threads
    monkeypatch.setattr(pdf, "_installed_fonts", lambda: "/usr/share/fonts/a-font-installed-since.ttf")
    pdf.forget_fonts()
    assert render(2) == 3  # made again after a SIGHUP that finds a font installed since
    styled = "<html><head><style>@font-face { font-family: X; src: local(DejaVu Sans) }</style></head><body>x</body></html>"
    pdf.render_pdf(styled)
    pdf.render_pdf(styled)
    assert len(made) == 5  # a template's own fonts: a configuration each time, reaching no other report


def test_sighups_with_the_fonts_unchanged_load_no_new_font_configuration(monkeypatch):
    """Found in a soak audit: each SIGHUP (logrotate's, daily) made every report worker's next PDF load a new font
    configuration, whose memory WeasyPrint never all gives back (60 reloads with 2 workers: +27 MB of RSS, flat
    without the reloads). A SIGHUP now renews it only when the installed fonts changed (fc-list)."""
    from weasyprint.text import fonts

    from agentdigest.render import pdf

    made = []
    real_init = fonts.FontConfiguration.__init__

    def counting_init(self, *args, **kwargs):
        made.append(1)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(fonts.FontConfiguration, "__init__", counting_init)
    page = "<html lang=\"en\"><body><h1>Weekly</h1><p>42 runs</p></body></html>"
    pdf.forget_fonts()  # the fonts as they are now, whatever this test process rendered before
    for _ in range(5):  # five SIGHUPs, a PDF after each
        assert pdf.render_pdf(page).startswith(b"%PDF")
        pdf.forget_fonts()
    assert len(made) == 1
    monkeypatch.setattr(pdf, "_installed_fonts", lambda: None)  # fc-list missing: renewed at each SIGHUP, as before
    pdf.forget_fonts()
    pdf.render_pdf(page)
    assert len(made) == 2


def test_a_clock_set_forward_puts_the_reports_to_work_before_the_alarm_check(tmp_path, shifted_clock):
    """The alarm check at a heartbeat that comes first after the clock was set forward a day (before the main loop
    saw it) found the day due 12 h before, plus its grace, late, and alarmed it while it was about to go out. The
    heartbeat now looks at the clock first: the reports are put to work, not alarmed, and the day is sent."""
    now = datetime.now(timezone.utc)
    events = make_events(tmp_path / "events.duckdb", end=now + timedelta(days=3), days=6, conversations=300)
    box, oncall = tmp_path / "outbox", tmp_path / "oncall"
    config = write_config(tmp_path, events=events, channels={**outbox("box", path=str(box)),
                                                            **outbox("oncall", path=str(oncall))},
                          reports=[{"id": "daily", "period": "day", "timezone": "UTC",
                                    "schedule": cron_far_from_now(now), "channels": ["box"]}],
                          alarms={"channel": "oncall", "grace_minutes": 60})
    handler = _Events()
    logging.getLogger("agentdigest").addHandler(handler)
    daemon = Daemon(config)
    try:
        daemon._sync_jobs()  # the workers, without the cron jobs running
        daemon.workers["daily"].request()  # the start's catch-up
        wait_for(lambda: len(sent_files(box)) == 1, what="the catch-up")
        wait_for(lambda: not daemon.working("daily"), what="the catch-up's end")
        daemon.tick()
        assert not [m for e, m in handler.events if e == "alarm_sent"]
        shifted_clock.seconds = 86400.0
        daemon.tick()  # the heartbeat before the main loop's look at the clock
        wait_for(lambda: len(sent_files(box)) == 2, what="the day the clock jumped past")
        wait_for(lambda: not daemon.working("daily"), what="its pass's end")
        daemon.tick()
        assert [e for e, _ in handler.events if e == "clock_jumped"] == ["clock_jumped"]
        assert not [m for e, m in handler.events if e == "alarm_sent"], handler.events
    finally:
        daemon.stop.request("SIGTERM")
        logging.getLogger("agentdigest").removeHandler(handler)
