"""Notices posted in patient rooms: one per event of the file, overdue tasks, daily ages.

The text of each notice is written by ``bots.dossier_link.notices`` (pure). A notice carries a
transaction id derived from what caused it (the feed's ``seq``, the task), so posting it again
after a crash sends it once. A ``!tache`` that assigns someone is answered by the room's
« Nouvelle tâche » notice itself (one action, one message): the command is remembered here
before the dossier is asked, so the feed cannot post the notice first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from bots.dossier_link.feed import TransientError
from bots.dossier_link.links import FileLinks
from bots.dossier_link.notices import Notice, render_event
from bots.dossier_link.roles import RoleLabels
from bots.matrix.io import txn_for
from bots.outbox import Unavailable

log = logging.getLogger(__name__)

TaskKey = tuple[str, str, str]  # (patient, actor, task label)


class Announcements:
    def __init__(self, links: FileLinks, roles: RoleLabels) -> None:
        self.links = links
        self.roles = roles
        self.io = links.io
        self._task_commands: dict[TaskKey, str] = {}  # -> the !tache command's event id

    def remember_task_command(self, pid: str, actor: str, label: str, command: Any) -> None:
        """Noted before the dossier is asked, so the feed cannot post the notice first."""
        if not isinstance(command, str):
            return
        while len(self._task_commands) >= 1000:  # notices never seen (quiet start): bounded
            self._task_commands.pop(next(iter(self._task_commands)))
        self._task_commands[(pid, actor, label)] = command

    async def render(self, event: Mapping[str, Any], pid: str, room_id: str) -> Notice | None:
        """The notice of ``event``; a care-circle event waits for the dossier's role labels
        (``Unavailable`` while it is away: the caller retries)."""
        roles = await self.roles.get() if str(event.get("type")).startswith("circle.") else {}
        return render_event(event, self.links.file_url(pid), self.links.names(room_id), roles)

    async def post_file_notice(
        self, room_id: str, pid: str, event: Mapping[str, Any], notice: Notice
    ) -> None:
        """The notice of one feed event; a !tache's notice answers the command."""
        task_key = _task_key(event, pid)
        command = self._task_commands.get(task_key) if task_key else None
        await self._send(
            room_id, notice, txn_for(f"dossier-seq-{event['seq']}", "notice"), reply_to=command
        )
        if task_key:
            self._task_commands.pop(task_key, None)

    async def _send(
        self,
        room_id: str,
        notice: Notice,
        txn_id: str,
        *,
        mentions: Sequence[str] | None = None,
        reply_to: str | None = None,
    ) -> None:
        """Post ``notice`` (text and HTML) once under ``txn_id``, mentioning its own
        ``mentions`` unless told whom."""
        await self.io.send_notice(
            room_id,
            notice.plain,
            notice.html,
            mentions=notice.mentions if mentions is None else mentions,
            txn_id=txn_id,
            reply_to=reply_to,
        )

    async def announce_overdue(self) -> int:
        """Announce each overdue task once in its room; DM each assignee once."""
        links = self.links
        count = 0
        for task in await links.dossier.overdue_tasks():
            task_id = str(task.get("id") or "")
            pid = task.get("patient_id")
            if not task_id or links.store.overdue_announced(task_id) or not isinstance(pid, str):
                continue
            room_id = await links.resolve_room(pid)
            if room_id is None:
                continue
            await links.wait_for_room(room_id)
            notice = await self.render(
                {"type": "task.overdue", "payload": task, "patient_id": pid}, pid, room_id
            )
            assert notice is not None
            await self._send(room_id, notice, txn_for(f"overdue-{task_id}", "room"))
            for user in notice.direct_to:
                dm = await links.direct_room(user)
                await self._send(
                    dm, notice, txn_for(f"overdue-{task_id}", f"dm-{user}"), mentions=[user]
                )
            links.store.mark_overdue_announced(task_id)
            count += 1
        return count

    async def run_overdue(self, interval_seconds: float = 60.0) -> None:
        """Every ``interval_seconds``: overdue tasks; at each new day (Paris): ages."""
        links = self.links
        await links.wait_ready()
        day = links.today()
        while True:
            try:
                if links.today() != day:
                    day = links.today()
                    await links.refresh_ages()
                await self.announce_overdue()
            except (Unavailable, TransientError):
                pass
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("annonce des tâches en retard en échec")
            await asyncio.sleep(interval_seconds)


def _task_key(event: Mapping[str, Any], pid: str) -> TaskKey | None:
    if event.get("type") != "task.assigned":
        return None
    label = str((event.get("payload") or {}).get("label") or "")
    return (pid, str(event.get("actor") or ""), label)
