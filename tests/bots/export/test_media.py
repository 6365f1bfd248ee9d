"""Attachment download and chunked decryption, against a real HTTP server (aiohttp)."""

from __future__ import annotations

import hashlib
import os

import aiohttp
import pytest
from aiohttp import web
from nio.crypto.attachments import decrypt_attachment, encrypt_attachment

from bots.export.media import MediaError, MediaFetcher, MediaSource

PLAINTEXT = os.urandom(3 * 1024 * 1024 + 17)  # several chunks, not a multiple of the block


@pytest.fixture
async def media_server(aiohttp_server):
    ciphertext, keys = encrypt_attachment(PLAINTEXT)
    seen_auth: list[str | None] = []

    async def download(request: web.Request) -> web.StreamResponse:
        seen_auth.append(request.headers.get("Authorization"))
        media_id = request.match_info["media_id"]
        if media_id == "enc":
            return web.Response(body=ciphertext)
        if media_id == "plain":
            return web.Response(body=PLAINTEXT)
        return web.json_response({"errcode": "M_NOT_FOUND", "error": "absent"}, status=404)

    app = web.Application()
    app.router.add_get("/_matrix/client/v1/media/download/{server}/{media_id}", download)
    server = await aiohttp_server(app)
    return server, ciphertext, keys, seen_auth


def encrypted_content(keys: dict, media_id: str = "enc") -> dict:
    return {
        "file": {
            "url": f"mxc://cercle.localhost/{media_id}",
            "key": keys["key"],
            "iv": keys["iv"],
            "hashes": keys["hashes"],
            "v": "v2",
        }
    }


async def test_encrypted_attachment_is_streamed_and_decrypted(media_server, tmp_path) -> None:
    server, ciphertext, keys, seen_auth = media_server
    source = MediaSource.from_content(encrypted_content(keys))
    async with aiohttp.ClientSession() as session:
        fetcher = MediaFetcher(session, str(server.make_url("")), "secret-token", tmp_path)
        fetched = await fetcher.fetch(source)
    assert fetched.path.read_bytes() == PLAINTEXT
    assert fetched.path.read_bytes() == decrypt_attachment(
        ciphertext, keys["key"]["k"], keys["hashes"]["sha256"], keys["iv"]
    )
    assert fetched.sha256 == hashlib.sha256(PLAINTEXT).hexdigest()
    assert fetched.size == len(PLAINTEXT)
    assert seen_auth == ["Bearer secret-token"]  # authenticated media, token in a header
    assert oct(fetched.path.stat().st_mode & 0o777) == "0o600"


async def test_plain_attachment(media_server, tmp_path) -> None:
    server, *_ = media_server
    source = MediaSource.from_content({"url": "mxc://cercle.localhost/plain"})
    async with aiohttp.ClientSession() as session:
        fetched = await MediaFetcher(session, str(server.make_url("")), "t", tmp_path).fetch(source)
    assert fetched.sha256 == hashlib.sha256(PLAINTEXT).hexdigest()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("hash", "fichier altéré (empreinte incorrecte)"),
        ("missing", "fichier indisponible sur le serveur"),
        ("limit", "fichier trop volumineux pour l'export"),
        ("url", "adresse de fichier invalide"),
    ],
)
async def test_failures_are_french_reasons_and_leave_no_file(
    media_server, tmp_path, change, reason
) -> None:
    server, _, keys, _ = media_server
    content = encrypted_content(keys, "absent" if change == "missing" else "enc")
    if change == "hash":
        content["file"]["hashes"] = {"sha256": "A" * 43}
    if change == "url":
        content["file"]["url"] = "https://example.invalid/x"
    source = MediaSource.from_content(content)
    async with aiohttp.ClientSession() as session:
        fetcher = MediaFetcher(
            session,
            str(server.make_url("")),
            "t",
            tmp_path,
            max_bytes=1024 if change == "limit" else 100 * 1024 * 1024,
        )
        with pytest.raises(MediaError) as caught:
            await fetcher.fetch(source)
    assert caught.value.reason == reason
    assert list(tmp_path.iterdir()) == []


def test_malformed_file_objects_are_refused() -> None:
    assert MediaSource.from_content({"file": {"url": "mxc://a/b"}}) is None
    assert MediaSource.from_content({"body": "x"}) is None
