"""The bridge's storage, vault, configuration and status lines (no server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bots.matrix.ledger import open_database
from bridges.mail.config import MailBridgeConfig, MailHosts, bridge_enabled
from bridges.mail.status import mailbox_lines, mailbox_report
from bridges.mail.store import BridgeStore, PostedMail
from bridges.mail.vault import CredentialVault, VaultError
from cercle.supervisor import SERVICES
from deployment.profile import ProfileError, load_profile


def test_vault_binds_the_owner_and_keeps_no_plaintext(tmp_path: Path) -> None:
    vault = CredentialVault.from_secrets_dir(tmp_path)
    sealed = vault.seal("s3cret-mot-de-passe", owner="@marie:x")
    assert b"s3cret" not in sealed
    assert vault.open(sealed, owner="@marie:x") == "s3cret-mot-de-passe"
    with pytest.raises(VaultError):
        vault.open(sealed, owner="@jean:x")  # moved to another account
    with pytest.raises(VaultError):
        CredentialVault("une autre clé").open(sealed, owner="@marie:x")
    assert (tmp_path / "mail_bridge_vault_key").stat().st_mode & 0o777 == 0o600
    assert CredentialVault.from_secrets_dir(tmp_path).open(sealed, owner="@marie:x")


def test_position_moves_with_the_record_and_refusal_is_notified_once(tmp_path: Path) -> None:
    db = open_database(tmp_path / "bridge.sqlite3")
    store = BridgeStore(db)
    store.save_credentials("@m:x", "m@mss.test", b"sealed")
    store.set_rooms("@m:x", "!r", "!s")
    store.reset_position("@m:x", 42, 0)
    store.record_posted(PostedMail("@m:x", 42, 7, "$e7", "<a@b>", ("<r@b>",)))
    box = store.mailbox("@m:x")
    assert box is not None and box.last_uid == 7 and box.last_mail_at
    assert store.posted("@m:x", 42, 7) and store.posted_message_id("@m:x", "<a@b>")
    assert store.mail_of_event("$e7") == PostedMail("@m:x", 42, 7, "$e7", "<a@b>", ("<r@b>",))
    assert store.mark_login_refused("@m:x", 1) is True
    assert store.mark_login_refused("@m:x", 1) is False  # told once per credentials
    box = store.mailbox("@m:x")
    assert box is not None and box.login_refused
    store.save_credentials("@m:x", "m@mss.test", b"new")  # new password: tried again
    box = store.mailbox("@m:x")
    assert box is not None and not box.login_refused and box.last_uid == 7

    report = mailbox_report(tmp_path / "bridge.sqlite3")
    assert report[0]["mails"] == 1 and report[0]["address"] == "m@mss.test"
    (line,) = mailbox_lines(report)
    assert line.startswith("    m@mss.test (@m:x) : en attente, dernier courrier le ")
    assert mailbox_report(tmp_path / "absent.sqlite3") == []


def test_config_off_by_default_and_bad_values_named() -> None:
    profile = load_profile(env={})
    assert not bridge_enabled(profile)
    assert not next(s for s in SERVICES if s.name == "courrier").enabled(profile)
    on = load_profile(
        env={},
        extra={
            "mail_bridge": {
                "enabled": True,
                "imap_host": "imap.mssante.test",
                "smtp_host": "smtp.mssante.test",
            }
        },
    )
    assert next(s for s in SERVICES if s.name == "courrier").enabled(on)
    config = MailBridgeConfig.from_profile(on)
    assert config.user_id == "@cercle-courrier:cercle.localhost" and config.imap_port == 993
    assert config.max_mail_size == 50 * 1024 * 1024
    with pytest.raises(ProfileError, match=r"mail_bridge\.imap_port \(réglages.*hors limites"):
        load_profile(env={}, extra={"mail_bridge": {"imap_port": 0}})
    with pytest.raises(ProfileError, match=r"mail_bridge\.smtp_security .*attendu 'tls' ou"):
        load_profile(env={"CERCLE__MAIL_BRIDGE__SMTP_SECURITY": "ssl"})
    with pytest.raises(ProfileError, match=r"mail_bridge\.allowed_servers\.0 .*forme"):
        load_profile(env={}, extra={"mail_bridge": {"allowed_servers": ["a b"]}})
    # enabled without its servers: refused as the bridge reads its section
    half = load_profile(env={}, extra={"mail_bridge": {"enabled": True, "imap_host": "x"}})
    with pytest.raises(ProfileError, match=r"mail_bridge\.smtp_host .*texte"):
        MailBridgeConfig.from_profile(half)


def test_cercle_status_lists_each_mailbox(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cercle.commands_run import status_report
    from cercle.context import CliContext
    from deployment.secrets import Secrets

    profile = load_profile(
        env={},
        extra={
            "var_dir": str(tmp_path),
            "homeserver": {"port": 9},
            "mail_bridge": {"enabled": True, "imap_host": "i", "smtp_host": "s"},
        },
    )
    store = BridgeStore(open_database(tmp_path / "mail" / "bridge.sqlite3"))
    store.save_credentials("@m:x", "m@mss.test", b"sealed")
    store.mark_login_refused("@m:x", 1)
    report = status_report(CliContext(profile, Secrets.load_or_create(tmp_path)))
    (box,) = report["services"]["courrier"]["mailboxes"]
    assert box["state"] == "connexion refusée" and box["error"].startswith("identifiant")
    assert "sealed" not in str(report)
    off = status_report(
        CliContext(
            load_profile(env={}, extra={"var_dir": str(tmp_path)}), Secrets.load_or_create(tmp_path)
        )
    )
    assert off["services"]["courrier"]["state"] == "disabled"


def test_commands_are_read_only_in_direct_chats_and_the_owners_courriers_room(
    tmp_path: Path,
) -> None:
    from nio import AsyncClient, MatrixRoom, RoomMessageText

    from bridges.mail.handlers import BridgeHandlers

    client = AsyncClient("http://127.0.0.1:9", "@cercle-courrier:x")
    store = BridgeStore(open_database(tmp_path / "b.sqlite3"))
    store.save_credentials("@m:x", "m@mss.test", b"s")
    store.set_rooms("@m:x", "!courriers", "!space")
    handlers = BridgeHandlers(
        client,
        None,
        store,
        None,
        server_name="x",  # type: ignore[arg-type]
        connect_mailbox=None,
        fetch_mail=None,
        fetch_file=None,
        filing=None,  # type: ignore[arg-type]
    )

    def room(room_id: str, *members: str) -> MatrixRoom:
        r = MatrixRoom(room_id, "@cercle-courrier:x")
        for m in ("@cercle-courrier:x", *members):
            r.add_member(m, None, None)
        return r

    def text(sender: str, body: str) -> RoomMessageText:
        return RoomMessageText.from_dict(
            {
                "type": "m.room.message",
                "event_id": "$e",
                "sender": sender,
                "origin_server_ts": 1,
                "content": {"msgtype": "m.text", "body": body},
            }
        )  # type: ignore[return-value]

    assert handlers.wants(text("@m:x", "!aide"), room("!dm", "@m:x"))
    assert not handlers.wants(text("@m:x", "!urgent"), room("!patient", "@m:x", "@j:x"))
    assert handlers.wants(text("@m:x", "merci"), room("!courriers", "@m:x"))  # replies, files
    assert not handlers.wants(text("@j:x", "!courrier à x"), room("!courriers", "@m:x", "@j:x"))


def test_a_file_from_before_own_servers_gains_them_and_disconnect_erases_the_password(
    tmp_path: Path,
) -> None:
    import sqlite3

    path = tmp_path / "bridge.sqlite3"
    old = sqlite3.connect(path)  # the mailboxes table as the first bridge made it
    old.execute(
        "CREATE TABLE mailboxes (owner TEXT PRIMARY KEY, address TEXT NOT NULL, "
        "sealed_password BLOB NOT NULL, credentials_version INTEGER NOT NULL DEFAULT 1, "
        "room_id TEXT, space_id TEXT, uidvalidity INTEGER, last_uid INTEGER NOT NULL DEFAULT 0, "
        "state TEXT NOT NULL DEFAULT 'nouvelle', error TEXT, refused_version INTEGER, "
        "last_mail_at INTEGER, updated_at INTEGER NOT NULL)"
    )
    old.execute(
        "INSERT INTO mailboxes(owner, address, sealed_password, updated_at) "
        "VALUES('@m:x', 'm@mss.test', x'01', 1)"
    )
    old.commit()
    old.close()
    store = BridgeStore(open_database(path))
    operator = MailHosts("imap.op.test", 993, "smtp.op.test", 465)
    box = store.mailbox("@m:x")
    assert box is not None and box.connected and box.hosts(operator) == operator
    own = MailHosts("imap.elle.test", 1993, "smtp.elle.test", 1587, "starttls")
    store.save_credentials("@m:x", "m@mss.test", b"\x01new", own)
    box = store.mailbox("@m:x")
    assert box is not None and box.hosts(operator) == own
    store.save_credentials("@m:x", "m@mss.test", b"\x01again")  # back to the operator's
    box = store.mailbox("@m:x")
    assert box is not None and box.hosts(operator) == operator
    version = box.credentials_version
    store.disconnect("@m:x")
    box = store.mailbox("@m:x")
    assert box is not None and not box.connected and box.sealed_password == b""
    assert box.credentials_version == version + 1 and box.state == "déconnectée"
    (line,) = mailbox_lines(mailbox_report(path))
    assert "déconnectée par sa titulaire" in line

    section = {
        "imap_host": "imap.op.test",
        "smtp_host": "smtp.op.test",
        "allowed_servers": ["imap.elle.test"],
    }
    profile = load_profile(env={}, extra={"var_dir": str(tmp_path), "mail_bridge": section})
    config = MailBridgeConfig.from_profile(profile)
    assert config.hosts_allowed(operator)
    assert not config.hosts_allowed(own)  # smtp.elle.test is not in the list
    assert config.hosts_allowed(MailHosts("IMAP.elle.test", 1, "smtp.op.test", 2))
    # the Matrix session's cross-signing keys: beside the bridge's data unless configured
    beside = tmp_path / "mail" / "cross_signing.enc"
    assert config.session_config().cross_signing_key_file == beside
    chosen = tmp_path / "ailleurs.enc"
    moved = config.replaced(cross_signing_key_path=chosen)
    assert moved.session_config().cross_signing_key_file == chosen
