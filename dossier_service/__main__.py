"""``python -m dossier_service``: the dossier service (`dossier_service.main`)."""

from deployment.startup import start

start("cercle-dossier", "dossier_service.main:main")
