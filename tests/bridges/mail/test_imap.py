"""The IMAP session's listing against a real Dovecot (TLS): new mails and their sizes in one
command, and the server's announcement of a mail that arrived meanwhile never missed (an
IDLE after it would not tell of that mail again)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bridges.mail.imap import ImapSession, tls_context
from tests.bridges.mail import mails

pytestmark = pytest.mark.integration


async def test_new_mails_lists_uids_sizes_and_announcements(
    mail_servers: Any, mailbox_factory: Any
) -> None:
    address, password = mailbox_factory()
    session = ImapSession("127.0.0.1", mail_servers.imap_port, tls_context(mail_servers.ca_file))
    await session.open(address, password)
    try:
        assert await session.new_mails(0) == ([], False)  # an empty INBOX, no error
        for i in range(3):
            text = "x" * (1000 * i)  # three different sizes
            await asyncio.to_thread(mail_servers.deliver, mails.simple(f"n°{i}", text), address)
        # delivered since the session last looked: the listing works on the server's last
        # view of the INBOX (none of them) but the announcement of the three is caught
        assert await session.new_mails(0) == ([], True)
        listed, announced = await session.new_mails(0)
        assert len(listed) == 3 and not announced
        assert [u for u, _ in listed] == sorted(u for u, _ in listed)
        for uid, size in listed:  # the size the server counts: the mail as it is fetched
            raw = await session.fetch(uid)
            assert raw is not None and size == len(raw)
        first, _, last = (uid for uid, _ in listed)
        assert await session.new_mails(first) == (listed[1:], False)
        # "n:*" also matches the last mail when n is past it: not new
        assert await session.new_mails(last) == ([], False)
        assert await session.new_mails(last + 10) == ([], False)
    finally:
        await session.close()
