"""PDF transcript export of a room's conversation (`!export` / `!pdf`).

    options.py     « depuis 25/11/2026 14:30 jusqu'à hier sans pièces jointes » -> ExportOptions (pure)
    history.py     /messages paged with nio, decrypted with the bot's keys, resolved -> Entry list
    media.py       authenticated media download streamed to temp files, chunked AES-CTR decryption
    people.py      patient and professions from the dossier (optional)
    formatting.py  formatted_body (safe HTML subset) / body -> styled paragraphs (pure)
    layout.py      entries -> positioned lines with cached word widths (pure)
    pdf.py         lines -> fpdf2 A4 document, images downscaled, files embedded
    transcript.py  the data in between, and the content digest printed on the last page

The digest on the last page is the SHA-256 of one line per entry (see
`transcript.ContentDigest`): event id, sender, timestamp in ms, kind, text shown and the
attachment's SHA-256.  It is also stored in the PDF's metadata (Subject).
"""
