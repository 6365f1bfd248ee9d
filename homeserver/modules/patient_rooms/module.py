"""Synapse entry point of the patient-room policy.

Loaded through `modules:` in homeserver.yaml::

    modules:
      - module: homeserver.modules.patient_rooms.PatientRoomsModule
        config: {}

The constructor stores the API and the config and registers the callbacks;
every decision is taken by the pure functions of `rules`. Logs carry the rule
name, the room id and the event type, never content.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

from synapse.module_api import NOT_SPAM, EventBase, ModuleApi, Requester, StateMap
from synapse.module_api.errors import Codes, SynapseError

from . import rules
from .config import PatientRoomsConfig, parse_config

logger = logging.getLogger(__name__)


class PatientRoomsModule:
    def __init__(self, config: PatientRoomsConfig, api: ModuleApi) -> None:
        self._api = api
        self._config = config
        self._relevant_types = rules.relevant_state_types(config)
        api.register_third_party_rules_callbacks(
            check_event_allowed=self.check_event_allowed,
            on_create_room=self.on_create_room,
        )
        api.register_spam_checker_callbacks(user_may_publish_room=self.user_may_publish_room)

    @staticmethod
    def parse_config(config: Mapping[str, Any] | None) -> PatientRoomsConfig:
        return parse_config(config)

    async def check_event_allowed(
        self, event: EventBase, state_events: StateMap[EventBase]
    ) -> tuple[bool, dict[str, Any] | None]:
        """Third-party rule: False makes Synapse answer 403 M_FORBIDDEN."""
        refusal = rules.check_event(_event(event), self._state(state_events), self._config)
        if refusal is None:
            return True, None
        logger.info(
            "patient_rooms: refused %s in %s (rule %s)", event.type, event.room_id, refusal.rule
        )
        return False, None

    async def on_create_room(
        self, requester: Requester, request: dict[str, Any], is_requester_admin: bool
    ) -> None:
        """Refuse, as a whole, a patient room asked for public or world-readable."""
        refusal = rules.check_room_creation(request, self._config)
        if refusal is not None:
            logger.info("patient_rooms: refused room creation (rule %s)", refusal.rule)
            raise SynapseError(403, refusal.message, Codes.FORBIDDEN)

    async def user_may_publish_room(
        self, user_id: str, room_id: str
    ) -> Literal["NOT_SPAM"] | Codes:
        """Spam checker: a patient room never goes into the room directory."""
        state = await self._api.get_room_state(room_id, [(self._config.marker_event_type, None)])
        refusal = rules.check_publication(self._state(state), self._config)
        if refusal is None:
            return NOT_SPAM
        logger.info("patient_rooms: refused publication of %s (rule %s)", room_id, refusal.rule)
        return Codes.FORBIDDEN

    def _state(self, state_events: StateMap[EventBase]) -> rules.RoomState:
        relevant = self._relevant_types
        return {
            key: rules.StateEntry(event.event_id, event.content)
            for key, event in state_events.items()
            if key[0] in relevant
        }


def _event(event: EventBase) -> rules.Event:
    state_key = event.get_state_key()
    target = event.redacts if event.type == rules.REDACTION else None
    redacts = target if isinstance(target, str) else None
    return rules.Event(
        type=event.type,
        state_key=state_key,
        content=event.content,
        redacts=redacts,
    )
