"""Replies of the bot command ``!trouver <requête>`` (pure): plain text and HTML."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from .search import Hit

MAX_BOT_RESULTS = 10


def format_results_for_bot(
    results: Sequence[Hit], *, total: int | None = None, query: str = ""
) -> tuple[str, str]:
    """Numbered list (for ``!inviter <n>``): name, profession, city, Cercle account or not."""
    shown = list(results)[:MAX_BOT_RESULTS]
    if not shown:
        text = (
            f"Aucun professionnel trouvé pour « {query} »."
            if query
            else "Aucun professionnel trouvé."
        )
        return text, escape(text)
    count = total if total is not None else len(shown)
    head = f"{count} résultat{'s' if count > 1 else ''}" + (f" pour « {query} »" if query else "")
    if count > len(shown):
        head += f" ({len(shown)} premiers)"
    lines = [head + " :"]
    items = []
    for n, hit in enumerate(shown, 1):
        account = f"compte Cercle {hit.mxid}" if hit.mxid else "pas de compte Cercle"
        what = hit.profession + (f" ({hit.specialty})" if hit.specialty else "")
        place = f", {hit.city}" if hit.city else ""
        lines.append(f"{n}. {hit.last_name} {hit.first_name.title()} — {what}{place} — {account}")
        mx = (
            f'<a href="https://matrix.to/#/{escape(hit.mxid)}">compte Cercle</a>'
            if hit.mxid
            else "pas de compte Cercle"
        )
        items.append(
            f"<li><b>{escape(hit.last_name)} {escape(hit.first_name.title())}</b> — "
            f"{escape(what)}{escape(place)} — {mx}</li>"
        )
    if any(h.mxid for h in shown):
        lines.append("Dans une salle patient : !inviter <n> pour inviter le professionnel n.")
    html = f"<p>{escape(head)} :</p><ol>{''.join(items)}</ol>"
    if any(h.mxid for h in shown):
        html += "<p>Dans une salle patient : <code>!inviter &lt;n&gt;</code>.</p>"
    return "\n".join(lines), html
