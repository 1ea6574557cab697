"""A private Dovecot IMAP server on loopback for the mail tests, and a helper to fill its mailbox.

`dovecot` (session) starts /usr/sbin/dovecot in the foreground with a throw-away configuration and
Maildir under /tmp: plain IMAP, STARTTLS and IMAPS with a self-signed certificate for 127.0.0.1, one
test user with a plain password. `imap_mailbox` (per test) empties the mailbox, points the app's
HELPDESK_IMAP_* settings at it and offers append/list helpers (through IMAPClient, as a mail client
would). Without dovecot the tests are skipped with the reason; HELPDESK_REQUIRE_IMAP=1 (CI) fails them.

Use it in a test module with `from tests.mailserver import dovecot, imap_mailbox  # noqa: F401`.
"""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

DOVECOT = os.environ.get("HELPDESK_TEST_DOVECOT", "/usr/sbin/dovecot")
REQUIRE_IMAP = os.environ.get("HELPDESK_REQUIRE_IMAP") == "1"
USER = "helpdesk@ksm.example"
PASSWORD = "imap-test-password"
START_SECONDS = 15


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _unavailable(reason: str):
    if REQUIRE_IMAP:
        pytest.fail(f"IMAP server required (HELPDESK_REQUIRE_IMAP=1): {reason}")
    pytest.skip(f"no IMAP test server: {reason}")


class DovecotServer:
    """One dovecot master process with its own configuration, sockets, logs and Maildir."""

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="hd-dovecot-"))
        self.port = _free_port()  # plain IMAP, STARTTLS offered
        self.ssl_port = _free_port()  # IMAPS
        self.host = "127.0.0.1"
        self.user, self.password = USER, PASSWORD
        self.cert = self.root / "cert.pem"
        self.tls = False  # STARTTLS and IMAPS offered (openssl made a certificate)
        self.process: subprocess.Popen | None = None

    # Running as root, dovecot refuses mail uid 0: the mail belongs to "nobody" then. As any other user
    # it runs unprivileged, everything as that user.
    def _accounts(self) -> tuple[int, int, str]:
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            return nobody.pw_uid, nobody.pw_gid, ""
        me = pwd.getpwuid(os.geteuid())
        return me.pw_uid, me.pw_gid, (
            f"default_internal_user = {me.pw_name}\ndefault_login_user = {me.pw_name}\n"
        )

    def _make_certificate(self) -> bool:
        key = self.root / "key.pem"
        done = subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(self.cert)],
            capture_output=True, timeout=60, check=False,
        ) if shutil.which("openssl") else None
        return bool(done and done.returncode == 0)

    def write_config(self) -> Path:
        uid, gid, unprivileged = self._accounts()
        mail = self.root / "mail"
        mail.mkdir()
        os.chmod(self.root, 0o755)
        if os.geteuid() == 0:
            os.chown(mail, uid, gid)
        (self.root / "users").write_text(f"{self.user}:{{PLAIN}}{self.password}\n")
        self.tls = self._make_certificate()
        tls = (
            f"ssl = yes\nssl_cert = <{self.cert}\nssl_key = <{self.root / 'key.pem'}\n" if self.tls else "ssl = no\n"
        )
        config = self.root / "dovecot.conf"
        config.write_text(f"""\
# Throw-away test server (tests/mailserver.py)
protocols = imap
listen = 127.0.0.1
base_dir = {self.root}/run
state_dir = {self.root}/state
instance_name = hd-test-{self.port}
log_path = {self.root}/dovecot.log
{unprivileged}{tls}disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{mail}/%u/Maildir
first_valid_uid = {uid}
last_valid_uid = {uid}
mail_uid = {uid}
mail_gid = {gid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.root}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={mail}/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.ssl_port if self.tls else 0}
  }}
}}
service anvil {{
  chroot =
}}
""")
        return config

    def start(self) -> None:
        config = self.write_config()
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if self._answers():
                return
            time.sleep(0.1)
        problem = self.log_tail()
        self.stop()
        raise RuntimeError(f"dovecot did not start: {problem}")

    def _answers(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as sock:
                return sock.recv(200).startswith(b"* OK")
        except OSError:
            return False

    def log_tail(self) -> str:
        parts = []
        if self.process is not None and self.process.poll() is not None and self.process.stderr:
            parts.append(self.process.stderr.read().decode(errors="replace"))
        log = self.root / "dovecot.log"
        if log.exists():
            parts.append("\n".join(log.read_text(errors="replace").splitlines()[-10:]))
        return " | ".join(p.strip() for p in parts if p.strip())[-2000:] or "no output"

    def stop(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=10)
            if self.process.stderr:
                self.process.stderr.close()
            self.process = None
        shutil.rmtree(self.root, ignore_errors=True)

    def client(self):
        """Return a logged-in IMAPClient (plain, loopback) for the test itself."""
        from imapclient import IMAPClient

        client = IMAPClient(self.host, port=self.port, ssl=False, timeout=10)
        client.login(self.user, self.password)
        return client


class Mailbox:
    """The test user's mailbox, seen the way a mail client sees it."""

    def __init__(self, server: DovecotServer):
        self.server = server

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        """Put a message into a folder (IMAP APPEND), unread."""
        with self.server.client() as client:
            client.append(folder, raw)

    def messages(self, folder: str = "INBOX") -> list[bytes]:
        """Return the raw messages of a folder, oldest first ([] if the folder does not exist)."""
        with self.server.client() as client:
            if not client.folder_exists(folder):
                return []
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            rows = client.fetch(uids, ["BODY.PEEK[]"]) if uids else {}
            return [rows[uid][b"BODY[]"] for uid in sorted(rows)]

    def empty(self) -> None:
        """Remove every folder but INBOX and every message in INBOX."""
        with self.server.client() as client:
            for _flags, _sep, name in client.list_folders():
                if name.upper() != "INBOX":
                    client.delete_folder(name)
            client.select_folder("INBOX")
            uids = client.search("ALL")
            if uids:
                client.delete_messages(uids)
                client.expunge()

    def configure(self, app, tls: str = "none") -> None:
        """Point the app's HELPDESK_IMAP_* settings at this mailbox."""
        port = self.server.ssl_port if tls == "ssl" else self.server.port
        app.config.update(
            IMAP_HOST=self.server.host, IMAP_PORT=port, IMAP_USER=self.server.user,
            IMAP_PASSWORD=self.server.password, IMAP_FOLDER="INBOX", IMAP_PROCESSED_FOLDER="Verarbeitet",
            IMAP_TLS=tls, IMAP_CA_FILE=str(self.server.cert) if tls != "none" else None, IMAP_TIMEOUT=10,
        )


@pytest.fixture(scope="session")
def dovecot():
    """A running private dovecot for the whole test session."""
    if not os.path.exists(DOVECOT):
        _unavailable(f"{DOVECOT} not installed (Debian package dovecot-imapd)")
    server = DovecotServer()
    try:
        server.start()
    except (RuntimeError, OSError) as exc:
        _unavailable(str(exc))
    yield server
    server.stop()


@pytest.fixture
def imap_mailbox(app, dovecot):
    """An empty mailbox; the app fetches from it (plain IMAP on loopback)."""
    mailbox = Mailbox(dovecot)
    mailbox.empty()
    mailbox.configure(app)
    return mailbox
