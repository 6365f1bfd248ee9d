"""Words people type for professions, specialties and modes of practice (pure data).

Keys are :func:`normalize.joined` forms (no accents, hyphens, apostrophes or spaces), so
"kiné", "Kiné", "masseur-kinésithérapeute" and "Masseur Kinésithérapeute" all land here.
Codes are those of the RPPS extract ("Code profession", "Code savoir-faire",
"Code mode exercice").
"""

from __future__ import annotations

from types import MappingProxyType

PROFESSION_LABELS = MappingProxyType(
    {
        "10": "Médecin",
        "21": "Pharmacien",
        "26": "Audioprothésiste",
        "28": "Opticien-Lunetier",
        "40": "Chirurgien-Dentiste",
        "50": "Sage-Femme",
        "60": "Infirmier",
        "70": "Masseur-Kinésithérapeute",
        "80": "Pédicure-Podologue",
        "81": "Orthoprothésiste",
        "82": "Podo-Orthésiste",
        "83": "Orthopédiste-Orthésiste",
        "84": "Oculariste",
        "85": "Epithésiste",
        "86": "Technicien de laboratoire médical",
        "91": "Orthophoniste",
        "92": "Orthoptiste",
        "93": "Psychologue",
        "94": "Ergothérapeute",
        "95": "Diététicien",
        "96": "Psychomotricien",
        "98": "Manipulateur ERM",
    }
)

_PROFESSIONS: dict[str, tuple[str, ...]] = {
    "10": ("medecin", "medecins", "medecine", "docteur", "toubib"),
    "21": ("pharmacien", "pharmacienne", "pharmaciens", "pharmacie", "pharma"),
    "26": ("audioprothesiste", "audio", "audioprothesistes"),
    "28": ("opticien", "opticienne", "opticienlunetier", "lunetier", "opticiens"),
    "40": ("dentiste", "chirurgiendentiste", "dentistes", "dentaire"),
    "50": ("sagefemme", "sagesfemmes", "maieuticien", "sf"),
    "60": (
        "infirmier",
        "infirmiere",
        "infirmiers",
        "infirmieres",
        "ide",
        "idel",
        "inf",
        "infirm",
        "infirmiereliberale",
        "infirmierliberal",
    ),
    "70": (
        "kine",
        "kines",
        "kinesitherapeute",
        "kinesitherapeutes",
        "kinesi",
        "masseurkinesitherapeute",
        "masseurkine",
        "masseur",
        "mk",
        "physio",
        "kinesitherapie",
    ),
    "80": ("podologue", "pedicure", "pedicurepodologue", "podologues", "podo"),
    "91": ("orthophoniste", "orthophonistes", "ortho", "orthophonie"),
    "92": ("orthoptiste", "orthoptistes"),
    "93": ("psychologue", "psychologues", "psy", "psycho"),
    "94": ("ergotherapeute", "ergotherapeutes", "ergo", "ergotherapie"),
    "95": ("dieteticien", "dieteticienne", "dieteticiens", "dietetique", "diet", "nutritionniste"),
    "96": ("psychomotricien", "psychomotricienne", "psychomot", "psychomotricite"),
}

# specialty words imply the profession "Médecin" (code 10)
_SPECIALTIES: dict[str, tuple[str, ...]] = {
    "SM54": (
        "generaliste",
        "generalistes",
        "medecingeneraliste",
        "medecinegenerale",
        "mg",
        "medecintraitant",
    ),
    "SM26": (
        "cardio",
        "cardiologue",
        "cardiologues",
        "cardiologie",
        "cardiologieetmaladiesvasculaires",
    ),
    "SM33": ("geriatre", "geriatrie", "geriatres"),
    "SM42": ("neuro", "neurologue", "neurologie", "neurologues"),
    "SM53": ("pneumo", "pneumologue", "pneumologie", "pneumologues"),
    "SM40": ("nephro", "nephrologue", "nephrologie"),
    "SM04": ("psychiatre", "psychiatrie", "psychiatres"),
    "SM49": ("santepublique", "santepubliqueetmedecinesociale"),
    "SM02": ("anesthesiste", "anesthesie", "anesthesiologie"),
    "SM15": ("dermato", "dermatologue", "dermatologie"),
    "SM19": ("endocrino", "endocrinologue", "diabetologue", "endocrinologie"),
    "SM24": ("gastro", "gastroenterologue", "hepatogastroenterologie"),
    "SM32": ("pediatre", "pediatrie", "pediatres"),
    "SM38": ("ophtalmo", "ophtalmologue", "ophtalmologie"),
    "SM39": ("orl", "otorhinolaryngologie"),
    "SM43": ("oncologue", "oncologie", "onco"),
    "SM57": ("rhumato", "rhumatologue", "rhumatologie"),
    "SM59": ("gyneco", "gynecologue", "gynecologie"),
}

_MODES: dict[str, tuple[str, ...]] = {
    "L": ("liberal", "liberale", "liberaux", "enville", "cabinet"),
    "S": ("salarie", "salariee", "salaries", "hospitalier", "hospitaliere"),
    "B": ("benevole", "benevoles"),
}

# words that carry no meaning in a search ("infirmier à Toulouse", "médecin de Béziers")
STOPWORDS = frozenset(
    {
        "a",
        "au",
        "aux",
        "en",
        "sur",
        "pres",
        "de",
        "des",
        "du",
        "le",
        "la",
        "les",
        "dr",
        "pr",
        "m",
        "mme",
        "mr",
        "madame",
        "monsieur",
    }
)


def _invert(table: dict[str, tuple[str, ...]]) -> MappingProxyType[str, str]:
    out: dict[str, str] = {}
    for code, words in table.items():
        for word in words:
            out[word] = code
    return MappingProxyType(out)


PROFESSION_WORDS = _invert(_PROFESSIONS)
SPECIALTY_WORDS = _invert(_SPECIALTIES)
MODE_WORDS = _invert(_MODES)
MODE_LABELS = MappingProxyType({"L": "Libéral", "S": "Salarié", "B": "Bénévole"})
