"""What ``make run`` adds for mail: the development sink when no SMTP server is configured."""

from __future__ import annotations

from pathlib import Path

from server.config import Settings


def configure_dev_mail(settings: Settings) -> tuple[Settings, str, bool]:
    """Without EVENTFLOW_SMTP_URL, point the processes at the development sink on a free
    port: (the settings to start them with, where mail goes, whether to run the sink)."""
    if settings.smtp_url:
        return settings, f"{settings.smtp_url} (EVENTFLOW_SMTP_URL)", False
    from server.app import free_port

    url = f"smtp://127.0.0.1:{free_port()}"
    folder = Path(settings.data_dir / "mail").resolve()
    return (settings.with_(smtp_url=url), f"{folder}/*.eml   (development SMTP sink on {url})",
            True)
