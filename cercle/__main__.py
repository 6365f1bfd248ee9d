"""``python -m cercle`` and the ``cercle`` command: the operator's front door (`cercle.cli`)."""

from deployment.startup import start


def main() -> None:
    start("cercle", "cercle.cli:main")


if __name__ == "__main__":
    main()
