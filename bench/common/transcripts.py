"""What both PDF benches share, without the Matrix client: the render-only child of
``export_memory.py`` imports this and ``bots.export`` alone, so its peak RSS is the renderer's
(importing nio costs ~35 MB of its own, which the exporter inside the bot has already paid).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from bots.export.binding import PartBinder

WORDS_TEXT = (
    "patiente pansement plaie propre tension artérielle glycémie infirmière médecin "
    "traitant kinésithérapeute rééducation œdème ordonnance renouvelée Doliprane matin "
    "soir visite domicile aidante fille appelle demain douleur évaluée cicatrisation "
    "bonne évolution surveiller fièvre 38,2 °C bilan sanguin prise de sang laboratoire "
    "résultat créatinine hémoglobine chute fauteuil barrières lit médicalisé "
    "auxiliaire de vie portage repas — coût 12 € "
)
WORDS = WORDS_TEXT.split()


def part_binder(name: str) -> Callable[[BinaryIO], PartBinder]:
    """The way of binding the PDF's parts named `name` in ``--binders``."""
    if name == "hand":
        from bots.export.binding import PdfBinder

        return PdfBinder
    if name == "pikepdf":
        from bench.alternatives.pikepdf_binder import PikepdfBinder  # the `bench` extra

        return PikepdfBinder
    raise SystemExit(f"unknown binder {name}")
