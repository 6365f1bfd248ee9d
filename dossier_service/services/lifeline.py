"""Life line episodes (parcours) by configurable theme."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service.models.lifeline import Episode
from dossier_service.models.patient import Patient
from dossier_service.policy import Principal
from dossier_service.schemas import EpisodeIn, EpisodeUpdate
from dossier_service.services import journal
from dossier_service.services.errors import InvalidInput, row_of_file
from dossier_service.services.patch import apply_patch
from dossier_service.services.text import fr_date


async def list_episodes(session: AsyncSession, *, patient_id: str) -> list[Episode]:
    rows = await session.exec(
        select(Episode).where(Episode.patient_id == patient_id).order_by(col(Episode.starts_on))
    )
    return list(rows.all())


async def add_episode(
    session: AsyncSession,
    *,
    principal: Principal,
    patient: Patient,
    data: EpisodeIn,
    themes: Sequence[str],
    form_ids: Sequence[str],
) -> Episode:
    if data.theme not in themes:
        raise InvalidInput("Thème de parcours inconnu.", field="theme")
    if data.ends_on is not None and data.ends_on < data.starts_on:
        raise InvalidInput("La fin du parcours précède son début.", field="ends_on")
    if data.form_id is not None and data.form_id not in form_ids:
        raise InvalidInput("Formulaire inconnu.", field="form_id")
    episode = Episode(patient_id=patient.id, created_by=principal.author, **data.model_dump())
    session.add(episode)
    await journal.note(
        session,
        principal,
        patient,
        f"Création du parcours {episode.theme} du {fr_date(episode.starts_on)}",
    )
    await session.flush()
    return episode


async def update_episode(
    session: AsyncSession,
    *,
    principal: Principal,
    patient: Patient,
    episode_id: str,
    data: EpisodeUpdate,
) -> Episode:
    episode = await row_of_file(session, Episode, episode_id, patient.id, "Parcours introuvable.")
    apply_patch(episode, data, clearable={"ends_on"})
    if episode.ends_on is not None and episode.ends_on < episode.starts_on:
        raise InvalidInput("La fin du parcours précède son début.", field="ends_on")
    session.add(episode)
    await journal.note(
        session,
        principal,
        patient,
        f"Modification du parcours {episode.theme} du {fr_date(episode.starts_on)}",
    )
    return episode
