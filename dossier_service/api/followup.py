"""Memos, hospitalisations and life line episodes of a file."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service import appkeys
from dossier_service.api.operation import Audit, Call, Operations, member_of_file
from dossier_service.api.serialize import dump, dump_all, dump_stay
from dossier_service.policy import Action
from dossier_service.schemas import (
    EpisodeIn,
    EpisodeUpdate,
    HospitalisationIn,
    HospitalisationUpdate,
    MemoIn,
    MemoUpdate,
)
from dossier_service.services import followup, lifeline

operations = Operations()
READ = member_of_file(Action.READ)
WRITE = member_of_file(Action.WRITE)
MEMOS = "/api/v1/patients/{patient_id}/memos"
STAYS = "/api/v1/patients/{patient_id}/hospitalisations"
EPISODES = "/api/v1/patients/{patient_id}/lifeline"


@operations.get(MEMOS, access=READ, audit=Audit("read", "memos"))
async def list_memos(call: Call, session: AsyncSession) -> tuple[int, Any]:
    return 200, {"items": dump_all(await followup.list_memos(session, patient_id=call.patient.id))}


@operations.post(MEMOS, access=WRITE, audit=Audit("create", "memos"), body=MemoIn)
async def add_memo(call: Call, session: AsyncSession) -> tuple[int, Any]:
    return 201, dump(await call.on_file(followup.add_memo, session, data=call.data(MemoIn)))


@operations.patch(
    MEMOS + "/{memo_id}", access=WRITE, audit=Audit("update", "memos"), body=MemoUpdate
)
async def update_memo(call: Call, session: AsyncSession) -> tuple[int, Any]:
    memo = await call.on_file(
        followup.update_memo, session, memo_id=call.path("memo_id"), data=call.data(MemoUpdate)
    )
    return 200, dump(memo)


@operations.get(STAYS, access=READ, audit=Audit("read", "hospitalisations"))
async def list_stays(call: Call, session: AsyncSession) -> tuple[int, Any]:
    stays = await followup.list_hospitalisations(session, patient_id=call.patient.id)
    return 200, {"items": [dump_stay(s, call.now()) for s in stays]}


@operations.post(
    STAYS, access=WRITE, audit=Audit("create", "hospitalisations"), body=HospitalisationIn
)
async def add_stay(call: Call, session: AsyncSession) -> tuple[int, Any]:
    stay = await call.on_file(
        followup.add_hospitalisation, session, data=call.data(HospitalisationIn)
    )
    return 201, dump_stay(stay, call.now())


@operations.patch(
    STAYS + "/{stay_id}",
    access=WRITE,
    audit=Audit("update", "hospitalisations"),
    body=HospitalisationUpdate,
)
async def update_stay(call: Call, session: AsyncSession) -> tuple[int, Any]:
    stay = await call.on_file(
        followup.update_hospitalisation,
        session,
        stay_id=call.path("stay_id"),
        data=call.data(HospitalisationUpdate),
    )
    return 200, dump_stay(stay, call.now())


@operations.get(EPISODES, access=READ, audit=Audit("read", "lifeline"))
async def list_episodes(call: Call, session: AsyncSession) -> tuple[int, Any]:
    episodes = await lifeline.list_episodes(session, patient_id=call.patient.id)
    return 200, {"items": dump_all(episodes)}


@operations.post(EPISODES, access=WRITE, audit=Audit("create", "lifeline"), body=EpisodeIn)
async def add_episode(call: Call, session: AsyncSession) -> tuple[int, Any]:
    episode = await call.on_file(
        lifeline.add_episode,
        session,
        data=call.data(EpisodeIn),
        themes=call.ctx.config.lifeline_themes,
        form_ids=[f.key for f in call.request.app[appkeys.FORMS]],
    )
    return 201, dump(episode)


@operations.patch(
    EPISODES + "/{episode_id}", access=WRITE, audit=Audit("update", "lifeline"), body=EpisodeUpdate
)
async def update_episode(call: Call, session: AsyncSession) -> tuple[int, Any]:
    episode = await call.on_file(
        lifeline.update_episode,
        session,
        episode_id=call.path("episode_id"),
        data=call.data(EpisodeUpdate),
    )
    return 200, dump(episode)
