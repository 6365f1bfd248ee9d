"""``python -m bots``: the coordination bot (`bots.main`), until SIGTERM / SIGINT."""

from deployment.startup import start

start("cercle-bot", "bots.main:main")
