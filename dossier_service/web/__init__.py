"""The dossier's pages for people (jinja2, French), embeddable as an Element widget.

``create_app`` calls :func:`setup` once the API, the database and the app keys are in place.

Routes (every POST carries the session's CSRF token; every read and write of a file goes
through ``api.context.open_file`` and the core's services, with its audit row):

- ``/connexion`` (login page: homeserver password login or Element's ``get_openid``),
  ``POST /connexion/openid`` (OpenID token -> session cookie), ``POST /deconnexion``;
  ``/widget?roomId=…`` (the room's file);
- ``/patients`` (list, search, new file), ``/patients/{id}`` (the file) and its writes:
  ``identite``, ``deces`` (+ ``/annulation``), ``statut``, ``memos`` (+ ``/{id}/archiver``),
  ``hospitalisations`` (+ ``/{id}/sortie``), ``taches``, ``cercle`` (+ ``/{id}/acces``,
  ``/{id}/fin``), ``parcours`` (+ ``/{id}/fin``), ``liaison``, ``documents`` (upload,
  ``/{id}`` download), ``formulaires/{form}`` (form and its versions);
- ``/taches`` (dashboard with filters), ``POST /taches/{id}/etat``;
- ``/agenda?vue=jour|semaine|mois|liste&date=…``, ``POST /agenda/evenements``,
  ``POST /agenda/abonnement`` (new secret iCalendar URL, served by the API's feed route);
- ``/journal`` (admins: the access log, filtered by file and author);
- ``/structures/{finess}`` (its referents, admins): members and referents, account requests
  naming the structure (``pages_structures``);
- ``/courriers`` (mounted by ``courriers.setup`` as an extension, when the mail bridge is
  enabled): connect / disconnect one's mailbox, file a mail into a patient's file.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from dossier_service import appkeys
from dossier_service.web import (
    pages_admin,
    pages_agenda,
    pages_documents,
    pages_extractions,
    pages_followup,
    pages_forms,
    pages_identity_circle,
    pages_login,
    pages_patients,
    pages_structures,
    pages_tasks,
)
from dossier_service.web.pages_login import PAGES
from dossier_service.web.people import PEOPLE, People, people_middleware
from dossier_service.web.rendering import STATIC_DIR, Pages, add_security_headers, is_page_path

__all__ = ["PAGES", "setup"]


def _page_errors(pages: Pages) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def page_errors(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Refusals and missing pages outside /api/ look like the rest of the site."""
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if (
                exc.status < 400
                or not is_page_path(request.path)
                or request.path.startswith("/static/")
                or request.path.endswith(".ics")
            ):  # other components keep their own replies
                raise
            message = exc.text or "" if exc.status == 403 else ""
            if exc.status == 403 and message:
                return await pages.render(
                    request,
                    "erreur.html",
                    {"titre": "Requête refusée", "explication": message.removeprefix("403: ")},
                    status=403,
                )
            return pages.error_page(request, exc.status, exc.reason)

    return page_errors


def setup(app: web.Application) -> None:
    config = app[appkeys.CONFIG]
    # the CSP lets the login page reach the homeserver as browsers know it
    pages = Pages(
        element_origin=config.element_origin, homeserver_url=config.browser_homeserver_url
    )
    app[PAGES] = pages
    people = People()
    app[PEOPLE] = people
    notices = app[appkeys.DATABASE].notices
    if notices is not None:  # a circle changed by another dossier process
        notices.subscribe(lambda _changed: people.forget())
    pages.env.globals.update(person=people.html, person_name=people.name)
    app.middlewares.append(people_middleware)
    app[appkeys.ERROR_RENDERER] = pages.error_page
    app.middlewares.append(_page_errors(pages))
    for module in (
        pages_login,
        pages_patients,
        pages_identity_circle,
        pages_followup,
        pages_documents,
        pages_forms,
        pages_tasks,
        pages_agenda,
        pages_admin,
        pages_extractions,
        pages_structures,
    ):
        app.router.add_routes(module.routes)
    app.router.add_static("/static/", STATIC_DIR, name="static", append_version=False)

    async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
        add_security_headers(pages, request, response)

    app.on_response_prepare.append(security_headers)
