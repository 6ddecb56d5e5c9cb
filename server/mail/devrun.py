"""What ``make run`` adds for mail: the development sink when no SMTP server is configured."""

from __future__ import annotations

import sys
from pathlib import Path

from server.config import Settings


def configure_dev_mail(settings: Settings, env: dict[str, str],
                       processes: dict[str, list[str]]) -> str:
    """Without EVENTFLOW_SMTP_URL, start the sink and point children at it; says where mail goes."""
    if settings.smtp_url:
        return f"{settings.smtp_url} (EVENTFLOW_SMTP_URL)"
    from server.app import free_port

    url = f"smtp://127.0.0.1:{free_port()}"
    env["EVENTFLOW_SMTP_URL"] = url
    processes["mail-sink"] = [sys.executable, "-m", "server.mail"]
    folder = Path(settings.data_dir / "mail").resolve()
    return f"{folder}/*.eml   (development SMTP sink on {url})"
