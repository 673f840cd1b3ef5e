"""The embedded (filesystem) broker keeps every file under the var dir, wherever the worker runs."""

from __future__ import annotations

import os

from celery import Celery
from kombu import Exchange, Queue

from posture.celery import configure


def test_it_keeps_the_filesystem_brokers_control_folder_under_var(settings, tmp_path, monkeypatch):
    settings.EMBEDDED_BROKER = True
    settings.CELERY_BROKER_URL = "filesystem://localhost//"
    settings.VAR_DIR = tmp_path / "var"
    elsewhere = tmp_path / "checkout"  # a hand-run `celery -A posture worker` from the checkout
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    app = Celery("posture-test")
    configure(app)
    # (explicit URL: Celery lets the test runner's CELERY_BROKER_URL win over app.conf)
    with app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
        # A fanout exchange (what worker broadcasts use) is the kind kombu records in control/.
        Queue("q", Exchange("posture-test-bcast", type="fanout"), channel=conn.default_channel).declare()
    assert os.listdir(elsewhere) == []
    assert (settings.VAR_DIR / "broker" / "control" / "posture-test-bcast.exchange").is_file()
