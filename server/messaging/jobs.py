"""The job that sends one API-sent message, by name and id: the server enqueues it after the
call commits, the workers run it, and their sweeper enqueues it again if it was lost."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Protocol

__all__ = ["SEND_JOB", "enqueue_sends", "send_job_id"]

SEND_JOB: Final = "send_api_message"


class Enqueuer(Protocol):
    async def enqueue_job(self, function: str, *args: object, _job_id: str | None = None,
                          _queue_name: str | None = None) -> object: ...


def send_job_id(prefix: str, message_id: int) -> str:
    return f"{prefix}msg:{message_id}"


async def enqueue_sends(redis: Enqueuer, *, prefix: str, queue: str,
                        message_ids: Sequence[int]) -> None:
    """Enqueue one job per message; a job already queued under its id is left alone."""
    for message_id in message_ids:
        await redis.enqueue_job(SEND_JOB, message_id, _job_id=send_job_id(prefix, message_id),
                                _queue_name=queue)
