"""Directory commands: find professionals from the conversation.

``!trouver <requête>`` (alias ``!find``) replies with the best matches of the dossier's
directory (name, profession, city, whether they have a Cercle account), numbered;
``!inviter <n>`` in a patient room invites result n of the sender's last search there:
the word ``inviter`` belongs to the patients family, which resolves a number with
:func:`result_user` (and adds the person to the care circle, as ``!cercle ajouter`` does).

The bot reaches the directory only through the dossier's HTTP API
(``GET /api/v1/annuaire``). Wired by ``BotApp._register_families`` with the dossier
client of the bot's dossier sync (no dossier configured: no ``!trouver``).
"""

from __future__ import annotations

import html
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bots.commands.registry import (
    CommandContext,
    CommandRegistry,
    Text,
    UsageError,
    UserError,
)

MAX_RESULTS = 10
MAX_QUERY = 200


class DirectorySearch(Protocol):
    async def search(self, query: str, *, per_page: int) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class Found:
    """One line of a reply: enough to invite and to name."""

    name: str
    profession: str
    city: str
    mxid: str | None


class DossierDirectory:
    """``GET /api/v1/annuaire`` through the bot's :class:`bots.dossier_client.DossierClient`."""

    def __init__(self, dossier: Any) -> None:
        self.dossier = dossier

    async def search(self, query: str, *, per_page: int) -> Mapping[str, Any]:
        body = await self.dossier.request(
            "GET", "/annuaire", params={"q": query, "par_page": per_page}
        )
        return body if isinstance(body, Mapping) else {}


class LastResults:
    """The last results shown to each (room, person), for ``!inviter <n>`` (bounded, 1 h)."""

    def __init__(self, max_entries: int = 1000, ttl_seconds: float = 3600.0) -> None:
        self.max_entries = max_entries
        self.ttl = ttl_seconds
        self._items: OrderedDict[tuple[str, str], tuple[float, list[Found]]] = OrderedDict()

    def remember(
        self, room_id: str, sender: str, found: list[Found], now: float | None = None
    ) -> None:
        key = (room_id, sender)
        self._items.pop(key, None)
        self._items[key] = (time.monotonic() if now is None else now, found)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    def get(self, room_id: str, sender: str, now: float | None = None) -> list[Found]:
        entry = self._items.get((room_id, sender))
        now = time.monotonic() if now is None else now
        if entry is None or now - entry[0] > self.ttl:
            return []
        return entry[1]


def _title(word: str) -> str:
    return "-".join(p[:1].upper() + p[1:].lower() for p in word.split("-"))


def found_from_api(items: Sequence[Mapping[str, Any]]) -> list[Found]:
    out = []
    for item in items[:MAX_RESULTS]:
        first = " ".join(_title(w) for w in str(item.get("prenom", "")).split())
        name = f"{str(item.get('nom', '')).upper()} {first}".strip()
        profession = str(item.get("profession", ""))
        specialty = str(item.get("specialite", "") or "")
        if specialty:
            profession = f"{profession} ({specialty})"
        practices = item.get("exercices") or []
        city = str(practices[0].get("ville", "")) if practices else ""
        mxid = item.get("compte_matrix")
        out.append(Found(name, profession, city, str(mxid) if mxid else None))
    return out


def found_without_rpps(items: Sequence[Mapping[str, Any]]) -> list[Found]:
    """Members of a structure without RPPS (issue 18): « sans RPPS » and their structure."""
    out = []
    for item in items[:MAX_RESULTS]:
        name, _, role = str(item.get("nom_affiche", "")).partition(" — ")
        structure = item.get("structure") or {}
        what = f"{role or 'professionnel'} (sans RPPS, {structure.get('nom', '')})"
        city = str(structure.get("ville", "")).title()
        mxid = item.get("compte_matrix")
        out.append(Found(name, what, city, str(mxid) if mxid else None))
    return out


def format_results_for_bot(
    found: Sequence[Found],
    *,
    query: str,
    total: int,
    more: bool = False,
    in_patient_room: bool = False,
    prefix: str = "!",
    structures: Sequence[Mapping[str, Any]] = (),
    structures_total: int = 0,
) -> tuple[str, str]:
    """Pure: the numbered reply (plain, HTML), then the structures found (issue 18)."""
    q = query.strip()
    if not found and not structures:
        text = f"Aucun professionnel ni aucune structure trouvés pour « {q} »."
        return text, html.escape(text)
    if not found:
        return _structures_reply(q, structures, structures_total)
    plain, body = _professionals_reply(found, q, total, more, in_patient_room, prefix)
    if structures:
        more_plain, more_body = _structures_reply(q, structures, structures_total)
        plain, body = f"{plain}\n{more_plain}", body + more_body
    return plain, body


def _structures_reply(
    q: str, structures: Sequence[Mapping[str, Any]], total: int
) -> tuple[str, str]:
    head = f"{total} structure{'s' if total > 1 else ''} pour « {q} »"
    if total > len(structures):
        head += f" ({len(structures)} premières)"
    lines, items = [head + " :"], []
    for s in structures:
        city = str(s.get("ville", "")).title()
        line = (
            f"{s.get('raison_sociale', '')} — {s.get('categorie', '')}, {city} — "
            f"FINESS {s.get('finess', '')}"
        )
        lines.append(f"• {line}")
        items.append(f"<li>{html.escape(line)}</li>")
    return "\n".join(lines), f"<p>{html.escape(head)} :</p><ul>{''.join(items)}</ul>"


def _professionals_reply(
    found: Sequence[Found], q: str, total: int, more: bool, in_patient_room: bool, prefix: str
) -> tuple[str, str]:
    count = f"plus de {total}" if more else str(total)
    head = f"{count} résultat{'s' if more or total > 1 else ''} pour « {q} »"
    if more or total > len(found):
        head += f" ({len(found)} premiers)"
    lines = [head + " :"]
    items = []
    for n, f in enumerate(found, 1):
        where = f", {f.city}" if f.city else ""
        account = f"compte Cercle {f.mxid}" if f.mxid else "pas de compte Cercle"
        lines.append(f"{n}. {f.name} — {f.profession}{where} — {account}")
        mx = (
            f'<a href="https://matrix.to/#/{html.escape(f.mxid)}">{html.escape(f.mxid)}</a>'
            if f.mxid
            else "pas de compte Cercle"
        )
        items.append(
            f"<li><b>{html.escape(f.name)}</b> — {html.escape(f.profession)}"
            f"{html.escape(where)} — {mx}</li>"
        )
    body = f"<p>{html.escape(head)} :</p><ol>{''.join(items)}</ol>"
    if in_patient_room and any(f.mxid for f in found):
        tip = (
            f"Pour inviter le professionnel n dans ce salon et le cercle de soins "
            f"(intervenant) : {prefix}inviter n ; avec un autre rôle : "
            f"{prefix}cercle ajouter @qui rôle."
        )
        lines.append(tip)
        body += f"<p>{html.escape(tip)}</p>"
    return "\n".join(lines), body


def result_user(
    memory: LastResults, room_id: str, sender: str, word: str, prefix: str = "!"
) -> str:
    """``!inviter <n>``: the Matrix id of result n of the sender's last search in this room
    (read by :mod:`bots.commands.invitee` for the patients family's ``!inviter``)."""
    if not word.isdigit() or int(word) < 1:
        raise UsageError(f"« {word[:20]} » n'est pas un numéro de résultat.")
    found = memory.get(room_id, sender)
    if not found:
        raise UserError(f"Faites d'abord une recherche : {prefix}trouver <requête>.")
    n = int(word)
    if n > len(found):
        raise UserError(f"Votre dernière recherche n'a que {len(found)} résultat(s).")
    who = found[n - 1]
    if who.mxid is None:
        raise UserError(
            f"{who.name} n'a pas encore de compte Cercle : il peut en demander un "
            "sur la page « Demander un compte » du dossier."
        )
    return who.mxid


def register(
    registry: CommandRegistry, *, search: DirectorySearch, results: LastResults | None = None
) -> LastResults:
    memory = results or LastResults()

    @registry.command(
        "trouver",
        aliases=("find",),
        args=(Text("requête", max_length=MAX_QUERY, label="la requête"),),
        help="cherche un professionnel dans l'annuaire (nom, ville, profession…)",
    )
    async def find(ctx: CommandContext, **values: str) -> None:
        requete = values["requête"]
        try:
            body = await search.search(requete, per_page=MAX_RESULTS)
        except Exception as exc:
            if type(exc).__name__ in ("Unavailable", "Refused"):
                raise UserError(
                    "L'annuaire est momentanément indisponible ; réessayez dans un instant."
                ) from None
            raise
        without_rpps = found_without_rpps(list(body.get("sans_rpps") or []))
        found = (found_from_api(list(body.get("resultats") or [])) + without_rpps)[:MAX_RESULTS]
        memory.remember(ctx.room_id, ctx.sender, found)
        structures = body.get("structures") or {}
        plain, body_html = format_results_for_bot(
            found,
            query=requete,
            total=int(body.get("total") or 0) + len(without_rpps),
            more=bool(body.get("total_minimum")),
            in_patient_room=ctx.facts.is_patient_room,
            prefix=registry.prefix,
            structures=list(structures.get("resultats") or [])[:MAX_RESULTS],
            structures_total=int(structures.get("total") or 0),
        )
        await ctx.reply(plain, body_html)

    return memory
