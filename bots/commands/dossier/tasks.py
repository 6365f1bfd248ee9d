"""``!tache <libellé> [pour @qui] [échéance <date>]``, ``!tache fait <n>``, ``!taches``."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from bots.commands.dossier.access import FileAccess, away, by, say
from bots.commands.registry import (
    CommandContext,
    CommandRegistry,
    Text,
    UsageError,
    UserError,
    Where,
)
from bots.dossier_link.notices import fr_date
from bots.dossier_link.operations import CloseTask, CreateTask
from bots.dossier_link.parsing import ParseProblem, parse_task, task_order_key
from bots.matrix.io import member_name
from bots.outbox import Unavailable

TASK_ARGS = "libellé [pour @qui] [échéance date] | fait n"


def register(registry: CommandRegistry, access: FileAccess) -> None:
    @registry.command(
        "tache",
        aliases=("task", "tâche"),
        args=(Text(TASK_ARGS, max_length=700, label="la tâche"),),
        help="crée une tâche sur le dossier (ou « !tache fait 2 » clôt la tâche n° 2 de !taches)",
        where=Where.SHARED_ROOM,
    )
    async def tache(ctx: CommandContext, **values: str) -> None:
        text = values[TASK_ARGS].strip()
        words = text.split()
        if words and words[0].lower() in ("fait", "done") and len(words) == 2:
            await close_task(ctx, words[1])
            return
        try:
            request = parse_task(text, access.links.today())
        except ParseProblem as exc:
            raise UsageError(str(exc)) from None
        pid = await access.patient_of(ctx)
        await access.require_access(ctx, pid, reading=False)
        if request.assignees:
            await access.require_in_circle(pid, request.assignees)
        op = CreateTask(
            label=request.label,
            assignees=list(request.assignees),
            due_date=request.due.isoformat() if request.due else None,
            command=ctx.event_id,
            **by(ctx),
        )
        item = await access.write(ctx, "task", op, "la tâche")
        if item is None or request.assignees:
            return  # assigned: the room's « Nouvelle tâche » notice is the reply (one message)
        due = f" (échéance {fr_date(request.due)})" if request.due else ""
        await ctx.reply(
            f"📋 Tâche créée : « {request.label} »{due}.",
            f"📋 Tâche créée : « {html.escape(request.label)} »{html.escape(due)}.",
        )

    async def open_tasks(ctx: CommandContext) -> tuple[str, list[dict[str, Any]]]:
        """The room's file and its open tasks, in the order !taches numbers them."""
        pid = await access.patient_of(ctx)
        await access.require_access(ctx, pid, reading=True)
        try:
            tasks = await access.dossier.open_tasks(pid)
        except Unavailable:
            raise away() from None
        return pid, sorted(tasks, key=task_order_key)

    async def close_task(ctx: CommandContext, number: str) -> None:
        if not number.isdigit() or int(number) < 1:
            raise UsageError("Numéro de tâche attendu (voir !taches).")
        pid, tasks = await open_tasks(ctx)
        n = int(number)
        if n > len(tasks):
            raise UserError(f"Pas de tâche ouverte n° {n} (voir !taches).")
        task = tasks[n - 1]
        op = CloseTask(task_id=task["id"], patient_id=pid, actor=ctx.sender, room_id=ctx.room_id)
        if await access.write(ctx, "task-close", op, "la clôture de la tâche") is not None:
            await say(ctx, f"✅ Tâche « {task.get('label')} » close.")

    @registry.command(
        "taches",
        aliases=("tasks", "tâches"),
        help="liste les tâches ouvertes du patient, numérotées",
        where=Where.SHARED_ROOM,
    )
    async def taches(ctx: CommandContext) -> None:
        _, tasks = await open_tasks(ctx)
        if not tasks:
            await ctx.reply("Aucune tâche ouverte.", "Aucune tâche ouverte.")
            return

        def name(ref: str) -> str:  # a person by the name the room knows, not the id
            return member_name(access.client, ctx.room_id, ref)

        plain = ["Tâches ouvertes :"]
        rich = ["<p><strong>Tâches ouvertes</strong></p><ol>"]
        for n, t in enumerate(tasks, 1):
            people = [name(a["ref"]) for a in t.get("assignees") or [] if isinstance(a, Mapping)]
            due = f" — échéance {fr_date(t.get('due_date'))}" if t.get("due_date") else ""
            late = " ⏰ en retard" if t.get("overdue") else ""
            who = f" — pour {', '.join(people)}" if people else ""
            plain.append(f"{n}. {t.get('label')}{who}{due}{late}")
            rich.append(
                f"<li>{html.escape(str(t.get('label')))}{html.escape(who)}{html.escape(due)}{late}</li>"
            )
        rich.append("</ol>")
        plain.append("Pour clore : !tache fait <n>")
        rich.append("<p>Pour clore : <code>!tache fait &lt;n&gt;</code></p>")
        await ctx.reply("\n".join(plain), "".join(rich))
