"""The deployment profile: configuration and secrets shared by every component.

Nothing here knows Synapse, the bot or the dossier: it only loads `config/` with
its overrides and keeps the generated secrets under `var/`.
"""
