"""bin/run: migrate, bootstrap, then serve the web app with a Celery worker and beat.

One command for a laptop or a single server. With no DATABASE_URL / CELERY_BROKER_URL it
runs on the embedded default (SQLite and a filesystem broker under var/); with them set it
uses PostgreSQL and Redis. Ctrl-C stops everything it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "posture.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    bind = os.environ.get("POSTURE_BIND", "127.0.0.1:8000")
    print(f"database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}"
          f"{' (embedded, ' + str(settings.DATABASES['default']['NAME']) + ')' if not settings.DATABASE_URL else ''}")
    print(f"broker: {'embedded filesystem broker under ' + str(settings.VAR_DIR / 'broker') if settings.EMBEDDED_BROKER else settings.CELERY_BROKER_URL.split('@')[-1]}")
    call_command("migrate", interactive=False, verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    call_command("bootstrap")

    python = sys.executable
    procs = [
        subprocess.Popen([python, "-m", "celery", "-A", "posture", "worker", "-B", "--loglevel", "INFO",
                          "--concurrency", os.environ.get("POSTURE_WORKERS", "2")]),
        subprocess.Popen([python, "-m", "gunicorn", "posture.wsgi:application", "--bind", bind,
                          "--workers", os.environ.get("POSTURE_WEB_WORKERS", "2"), "--access-logfile", "-"]),
    ]

    def stop(*_):
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        sys.exit(0)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    url = f"http://{bind}/"
    for _ in range(100):
        try:
            urllib.request.urlopen(url + "login/", timeout=1)
            break
        except OSError:
            if any(p.poll() is not None for p in procs):
                print("a process exited during start-up; see the log above", file=sys.stderr)
                stop()
            time.sleep(0.2)
    print(f"\nposture is running: {url}  (log in as admin; Ctrl-C stops it)\n", flush=True)
    while all(p.poll() is None for p in procs):
        time.sleep(1)
    print("a process exited; stopping", file=sys.stderr)
    stop()
    return 1


if __name__ == "__main__":
    sys.exit(main())
