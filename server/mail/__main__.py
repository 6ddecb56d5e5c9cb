"""``python -m server.mail``: the development SMTP sink on EVENTFLOW_SMTP_URL's port,
storing letters under ``<data dir>/mail/``."""

from __future__ import annotations

import asyncio
import logging
import signal

from server.config import Settings
from server.logs import setup_logging
from server.mail.config import SmtpConfig
from server.mail.sink import MailSink

log = logging.getLogger("server.mail")


async def _serve(settings: Settings) -> None:
    config = SmtpConfig.from_url(settings.smtp_url or "smtp://127.0.0.1:8025")
    folder = (settings.data_dir / "mail").resolve()
    sink = MailSink(directory=folder, host=config.host, port=config.port)
    await sink.start()
    log.info("development SMTP sink on %s:%d storing letters in %s", sink.host, sink.port, folder)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await sink.stop()


def main() -> None:
    settings = Settings.load()
    setup_logging(settings.log_level)
    asyncio.run(_serve(settings))


if __name__ == "__main__":
    main()
