"""Real mail servers for the bridge's tests, on loopback, with TLS from a CA made here.

- **Dovecot** (Debian's ``dovecot-imapd`` + ``dovecot-lmtpd``, installed by the Makefile)
  run from a configuration in a temporary directory: IMAP over TLS (port 993-style),
  LMTP for delivery, maildir, a passwd-file of test mailboxes. Run as the current user;
  as root, its processes drop to Dovecot's own users and the mail to ``nobody``.
- **A submission relay** (aiosmtpd): SMTP over TLS with AUTH PLAIN/LOGIN checked against the
  same passwd-file; every accepted mail is delivered into Dovecot over LMTP, so a mail sent
  by one test mailbox lands in another's INBOX, as with an MSSanté operator. For the logins
  in ``sent_copy``, it also files a copy in the sender's Sent folder (IMAP APPEND), as
  operators that keep sent mail do; ``after_data`` (if set) runs once a mail is delivered,
  before the 250 answer (a test kills the bridge there).
"""

from __future__ import annotations

import asyncio
import ctypes
import datetime
import grp
import imaplib
import ipaddress
import os
import pwd
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from deployment.processes import stop_child

DOMAIN = "mss.test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_ca_and_cert(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 / localhost signed by it."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Cercle test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = (
        directory / "ca.pem",
        directory / "server.pem",
        directory / "server.key",
    )
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return ca_path, cert_path, key_path


_DOVECOT_CONF = """
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2
auth_mechanisms = plain login
auth_failure_delay = 0
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {internal_group}
first_valid_uid = {mail_uid}
first_valid_gid = {mail_gid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {base}/users
}}
userdb {{
  driver = static
  args = uid={mail_uid} gid={mail_gid} home={mail}/%u
}}
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps}
    ssl = yes
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp}
  }}
}}
protocol lmtp {{
  postmaster_address = postmaster@{domain}
}}
"""


def dovecot_available() -> bool:
    return shutil.which("dovecot") is not None or Path("/usr/sbin/dovecot").exists()


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dovecot s'est arrêté : {log.read_text(errors='replace')[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"dovecot n'écoute pas sur {port}")


@dataclass
class MailServers:
    base: Path
    mail_dir: Path
    ca_file: Path
    imap_port: int
    lmtp_port: int
    smtp_port: int
    dovecot: subprocess.Popen[bytes]
    relay: Controller
    passwords: dict[str, str] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)  # logins the relay refused
    sent_copy: set[str] = field(default_factory=set)  # logins whose mails are filed in Sent
    after_data: Any = None  # called (login, raw) once a submitted mail is delivered

    # -- mailboxes --
    def add_mailbox(self, address: str, password: str) -> None:
        self.passwords[address] = password
        users = self.base / "users"
        tmp = users.with_suffix(".tmp")
        tmp.write_text("".join(f"{a}:{{PLAIN}}{p}\n" for a, p in self.passwords.items()))
        tmp.chmod(0o644)
        os.replace(tmp, users)
        # Dovecot looks at the passwd-file at most once a second: a mailbox added in the
        # second of an earlier login is unknown to it until the next one. Ready once it logs in.
        deadline = time.monotonic() + 10
        while True:
            try:
                self.imap(address).logout()
                return
            except imaplib.IMAP4.error:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    # -- delivering and reading, as a test (blocking; call through asyncio.to_thread) --
    def client_tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def deliver(self, raw: bytes, to: str, sender: str = "expediteur@hopital.test") -> None:
        """A mail arriving from outside: LMTP into the mailbox."""
        with smtplib.LMTP("127.0.0.1", self.lmtp_port) as lmtp:
            lmtp.sendmail(sender, [to], raw)

    def submit(self, raw: bytes, login: str, to: list[str]) -> None:
        """A mail sent by ``login`` through the submission relay (TLS + AUTH)."""
        with smtplib.SMTP_SSL("127.0.0.1", self.smtp_port, context=self.client_tls()) as smtp:
            smtp.login(login, self.passwords[login])
            smtp.sendmail(login, to, raw)

    def imap(self, address: str) -> imaplib.IMAP4_SSL:
        client = imaplib.IMAP4_SSL("127.0.0.1", self.imap_port, ssl_context=self.client_tls())
        client.login(address, self.passwords[address])
        return client

    def messages(self, address: str, folder: str = "INBOX") -> list[bytes]:
        client = self.imap(address)
        try:
            client.select(folder, readonly=True)
            _, data = client.uid("search", None, "ALL")
            out = []
            for uid in data[0].split():
                _, parts = client.uid("fetch", uid, "(BODY.PEEK[])")
                out.append(bytes(parts[0][1]))  # type: ignore[index]
            return out
        finally:
            client.logout()

    def kick(self, address: str) -> None:
        """The server drops every IMAP connection of ``address`` (``doveadm kick``)."""
        subprocess.run(
            ["doveadm", "-c", str(self.base / "dovecot.conf"), "kick", address],
            check=True,
            capture_output=True,
            timeout=30,
        )

    def new_uidvalidity(self, address: str, value: int) -> None:
        """The server renumbers the INBOX (a restored or migrated mailbox)."""
        subprocess.run(
            [
                "doveadm",
                "-c",
                str(self.base / "dovecot.conf"),
                "mailbox",
                "update",
                "-u",
                address,
                "--uid-validity",
                str(value),
                "INBOX",
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )

    def stop(self) -> None:
        self.relay.stop()
        stop_child(self.dovecot, timeout=15)
        shutil.rmtree(self.mail_dir, ignore_errors=True)
        shutil.rmtree(self.base, ignore_errors=True)


class _Relay:
    """aiosmtpd handler: the recipients in Dovecot's domain get the mail over LMTP."""

    def __init__(self, servers: MailServers) -> None:
        self.servers = servers

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        known = address.lower() in (a.lower() for a in self.servers.passwords)
        if not (known or address.lower().endswith("@" + DOMAIN)):
            return "550 5.1.1 destinataire inconnu"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.to_thread(self._lmtp, envelope.mail_from, envelope.rcpt_tos, envelope.content)
        auth = session.auth_data
        login = auth.login.decode() if isinstance(auth, LoginPassword) else ""
        if login in self.servers.sent_copy:
            await asyncio.to_thread(self._file_sent, login, envelope.content)
        if self.servers.after_data is not None:
            await asyncio.to_thread(self.servers.after_data, login, envelope.content)
        return "250 Message accepted for delivery"

    def _file_sent(self, login: str, content: bytes) -> None:
        client = self.servers.imap(login)
        try:
            client.append("Sent", r"(\Seen)", None, content)
        finally:
            client.logout()

    def _lmtp(self, sender: str, rcpts: list[str], content: bytes) -> None:
        with smtplib.LMTP("127.0.0.1", self.servers.lmtp_port) as lmtp:
            lmtp.sendmail(sender, rcpts, content)


def _die_with_parent() -> None:
    """In the child: SIGTERM when the test process dies, even killed (no orphan Dovecot)."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start_mail_servers() -> MailServers:
    base = Path(tempfile.mkdtemp(prefix="cercle-dovecot-"))
    mail_dir = Path(tempfile.mkdtemp(prefix="cercle-maildir-"))
    (base / "run").mkdir()
    (base / "state").mkdir()
    ca_file, cert, key = make_ca_and_cert(base)
    me = pwd.getpwuid(os.getuid())
    if os.getuid() == 0:  # Dovecot refuses root for its login and mail processes
        login_user, internal_user, internal_group = "dovenull", "dovecot", "dovecot"
        nobody = pwd.getpwnam("nobody")
        mail_uid, mail_gid = nobody.pw_uid, nobody.pw_gid
        os.chown(mail_dir, mail_uid, mail_gid)
        os.chmod(mail_dir, 0o700)
        os.chmod(base, 0o711)  # Dovecot's auth process reads the passwd-file
    else:
        login_user = internal_user = me.pw_name
        internal_group = grp.getgrgid(os.getgid()).gr_name
        mail_uid, mail_gid = os.getuid(), os.getgid()
    imaps, lmtp, smtp = free_port(), free_port(), free_port()
    conf = base / "dovecot.conf"
    conf.write_text(
        _DOVECOT_CONF.format(
            base=base,
            cert=cert,
            key=key,
            mail=mail_dir,
            login_user=login_user,
            internal_user=internal_user,
            internal_group=internal_group,
            mail_uid=mail_uid,
            mail_gid=mail_gid,
            imaps=imaps,
            lmtp=lmtp,
            domain=DOMAIN,
        )
    )
    (base / "users").write_text("")
    (base / "users").chmod(0o644)
    proc = subprocess.Popen(
        ["dovecot", "-F", "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    _wait_port(imaps, proc, base / "dovecot.log")
    _wait_port(lmtp, proc, base / "dovecot.log")
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    servers = MailServers(base, mail_dir, ca_file, imaps, lmtp, smtp, proc, None)  # type: ignore[arg-type]

    def authenticate(
        server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and servers.passwords.get(data.login.decode()) == data.password.decode()
        )
        if not ok:
            servers.refused.append(data.login.decode() if isinstance(data, LoginPassword) else "?")
        return AuthResult(success=ok, handled=False, auth_data=data if ok else None)

    warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
    warnings.filterwarnings("ignore", "Session.login_data is deprecated")
    servers.relay = Controller(
        _Relay(servers),
        hostname="127.0.0.1",
        port=smtp,
        ssl_context=server_tls,
        authenticator=authenticate,
        auth_required=True,
        auth_require_tls=False,  # the whole connection is TLS (implicit, port 465-style)
        data_size_limit=60 * 1024 * 1024,
    )
    servers.relay.start()
    return servers
