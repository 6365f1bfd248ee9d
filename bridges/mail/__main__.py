"""``python -m bridges.mail``: the Courriers bridge (`bridges.mail.main`), until SIGTERM / SIGINT."""

from deployment.startup import start

start("cercle-courrier", "bridges.mail.main:main")
