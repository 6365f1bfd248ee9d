"""The export's PDF sent from disk: encrypted chunk by chunk, read back by nio's own decryption."""

from __future__ import annotations

import os

import pytest
from nio import MessageDirection
from nio.crypto.attachments import decrypt_attachment, encrypt_attachment
from support import download_media

from bots.export.paging import event_source
from bots.matrix.io import FILE_CHUNK, MatrixIO, UploadTooLarge, encrypt_file
from bots.matrix.trust import MemberDeviceTrust


@pytest.mark.parametrize("size", [0, 15, FILE_CHUNK, 3 * FILE_CHUNK + 17])
def test_encrypted_file_is_what_nio_decrypts(tmp_path, size) -> None:
    plain = os.urandom(size)
    source, target = tmp_path / "transcription.pdf", tmp_path / "chiffré"
    source.write_bytes(plain)
    keys = encrypt_file(source, target)
    ciphertext = target.read_bytes()
    assert len(ciphertext) == size and (size == 0 or ciphertext != plain)
    assert decrypt_attachment(
        ciphertext, keys["key"]["k"], keys["hashes"]["sha256"], keys["iv"]
    ) == (plain)
    _, nio_keys = encrypt_attachment(plain)  # the same decryption info, field for field
    assert keys.keys() == nio_keys.keys() and keys["v"] == nio_keys["v"] == "v2"
    assert {k: v for k, v in keys["key"].items() if k != "k"} == {
        k: v for k, v in nio_keys["key"].items() if k != "k"
    }
    assert len(keys["iv"]) == len(nio_keys["iv"]) and keys["iv"].endswith("AAAAAAAAAA")


def test_each_file_gets_its_own_key(tmp_path) -> None:
    source = tmp_path / "a"
    source.write_bytes(b"x" * 100)
    first = encrypt_file(source, tmp_path / "1")
    second = encrypt_file(source, tmp_path / "2")
    assert first["key"]["k"] != second["key"]["k"] and first["iv"] != second["iv"]
    assert (tmp_path / "1").read_bytes() != (tmp_path / "2").read_bytes()


@pytest.mark.integration
async def test_file_sent_from_disk_is_decrypted_by_a_member(
    nio_client_factory, rooms, tmp_path
) -> None:
    alice = await nio_client_factory()
    sender = await nio_client_factory()
    room_id = await rooms.create(alice, sender, name="Envoi de fichier")
    await sender.sync(timeout=0)
    io = MatrixIO(sender, MemberDeviceTrust(sender))
    plain = os.urandom(2 * FILE_CHUNK + 1234)
    export_dir = tmp_path / "export"
    export_dir.mkdir()
    path = export_dir / "transcription.pdf"
    path.write_bytes(plain)

    uploaded = await io.upload_encrypted_file(path)
    await io.send_uploaded(
        room_id, uploaded, filename="Transcription.pdf", mimetype="application/pdf", txn_id="t1"
    )

    assert [p.name for p in export_dir.iterdir()] == ["transcription.pdf"]  # no ciphertext left
    await alice.sync(timeout=0)
    response = await alice.room_messages(room_id, direction=MessageDirection.back, limit=10)
    contents = [
        event_source(e)["content"]
        for e in response.chunk
        if e.sender == sender.user_id and event_source(e).get("type") == "m.room.message"
    ]
    [content] = contents
    assert content["msgtype"] == "m.file" and "url" not in content  # encrypted attachment only
    assert content["info"] == {"mimetype": "application/pdf", "size": len(plain)}
    file = content["file"]
    ciphertext = await download_media(alice, file["url"])
    assert ciphertext != plain
    assert decrypt_attachment(
        ciphertext, file["key"]["k"], file["hashes"]["sha256"], file["iv"]
    ) == (plain)


@pytest.mark.integration
async def test_a_file_over_the_servers_limit_is_refused_before_sending(
    nio_client_factory, tmp_path
) -> None:
    # the server cuts such an upload off without an answer, and nio retried it for ever: an
    # export over the limit hung without a word to the professional (issue 15)
    sender = await nio_client_factory()
    io = MatrixIO(sender, MemberDeviceTrust(sender))
    limit = await io.upload_limit()
    assert limit == 50 * 1024 * 1024  # the deployment's max_upload_size, as Synapse says it
    export_dir = tmp_path / "export"
    export_dir.mkdir()
    path = export_dir / "transcription.pdf"
    with open(path, "wb") as fh:  # sparse: nothing is written, nothing is read
        fh.truncate(limit + 1)
    with pytest.raises(UploadTooLarge) as refused:
        await io.upload_encrypted_file(path)
    assert (refused.value.size, refused.value.limit) == (limit + 1, limit)
    assert sorted(p.name for p in export_dir.iterdir()) == ["transcription.pdf"]
