"""Temporal Schedules kept in line with configuration, an operator's pause kept."""

from __future__ import annotations

from temporalio.client import (
    Client,
    Schedule,
    ScheduleAlreadyRunningError,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode


async def ensure_schedule(client: Client, schedule_id: str, desired: Schedule) -> None:
    """Create the schedule, or give the existing one `desired`'s spec, action and policy.

    Its state (paused, with the note an operator wrote in the Web UI) stays as it is:
    configuration says what a schedule does, the operator whether it runs."""
    try:
        await client.create_schedule(schedule_id, desired)
    except ScheduleAlreadyRunningError:

        def update(current: ScheduleUpdateInput) -> ScheduleUpdate:
            desired.state = current.description.schedule.state
            return ScheduleUpdate(schedule=desired)

        await client.get_schedule_handle(schedule_id).update(update)


async def delete_schedule(client: Client, schedule_id: str) -> None:
    """Delete the schedule; one that is not there is fine."""
    try:
        await client.get_schedule_handle(schedule_id).delete()
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
