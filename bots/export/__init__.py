"""PDF transcript export of a room's conversation (`!export` / `!pdf`).

    options.py     « depuis 25/11/2026 14:30 jusqu'à hier sans pièces jointes » -> ExportOptions (pure)
    paging.py      the timeline in order: /messages in bounded pages, decrypted by nio
    drafts.py      what each event becomes: message, edit, redaction, undecryptable, flag (pure)
    spool.py       the drafts in a temporary SQLite file: edits, receipts, last N, replies in SQL
    history.py     events resolved (edits, redactions, replies, flags, receipts) -> a lazy,
                   re-iterable view of entries read back from the spool (memory stays flat)
    receipts.py    the latest read receipt per member, from the server and the live client
    media.py       authenticated media download streamed to temp files, chunked AES-CTR decryption
    people.py      patient and professions from the dossier (optional)
    formatting.py  formatted_body (safe HTML subset) / body -> styled paragraphs (pure)
    lines.py       line breaking with cached word widths, emoji placeholder, RTL order (pure)
    layout.py      entries -> blocks of positioned lines, images, spacers (pure)
    pdf.py         lines -> fpdf2 A4 documents of 400 pages at most (parts), images downscaled,
                   files embedded; "page X / N" stamped once N is known
    binding.py     the parts bound into one PDF, one object at a time (memory stays flat)
    pdf_syntax.py  the few PDF objects the binder reads and writes, strings kept byte for byte
    pending.py     exports asked for and not yet over, resumed after a restart
    transcript.py  the data in between, and the content digest printed on the last page

The digest on the last page is the SHA-256 of one line per entry (see
`transcript.ContentDigest`): event id, sender, timestamp in ms, kind, text shown and the
attachment's SHA-256.  It is also stored in the PDF's metadata (Subject).
"""
