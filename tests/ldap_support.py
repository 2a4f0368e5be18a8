"""The OpenLDAP side of the tests: a private slapd per session, and a fresh subtree per app or live server.

Tests use the directory named by ``SCIM_TEST_LDAP_URL`` (with ``SCIM_TEST_LDAP_BASE_DN``,
``SCIM_TEST_LDAP_BIND_DN`` and ``SCIM_TEST_LDAP_BIND_PASSWORD``; it needs the scimResource schema and
the sssvlv overlay), or else a private slapd that ``tests/conftest.py`` starts once per session, the
first time a test asks for it (:func:`start`). Without either, LDAP tests skip with the reason of
:func:`why_no_directory`, except under ``CI=true``, where they fail.

The private slapd has its own cn=config in a temporary folder, on 127.0.0.1 and free ports. It runs
in the foreground (``-d 0``) as a child of the test process, so the fixture owns its PID and sees its
errors (a daemonised slapd logs to syslog, which these machines lack). It listens on ``ldap://``
(StartTLS offered), on ``ldaps://`` with a server certificate signed by a throwaway CA made with the
openssl CLI in the same folder, and on an ``ldapi://`` socket there, where the test user is the
manager of cn=config through SASL EXTERNAL (as root is on a packaged slapd).

:class:`Subtrees` gives every app (every folder) a base DN of its own below the directory's base, so
the HTTP tests on LDAP are independent although they share one server.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

URL_ENV = "SCIM_TEST_LDAP_URL"
IN_CI = os.environ.get("CI") == "true"

SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIRS = (Path("/usr/lib/ldap"), Path("/usr/lib/openldap"), Path("/usr/local/libexec/openldap"))
BASE_DN = "dc=scim,dc=test"
ROOT_DN = "cn=admin,dc=scim,dc=test"
ROOT_PASSWORD = "secret"


@dataclass
class Slapd:
    """A running private slapd."""

    url: str
    base_dn: str
    bind_dn: str
    password: str
    process: subprocess.Popen[bytes]
    folder: Path
    ldaps_url: str | None = None
    ldapi_url: str | None = None
    ca_file: str | None = None

    def stop(self) -> None:
        """Stop this slapd (only the process the fixture started)."""
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def find_binaries() -> tuple[str, str] | None:
    """(slapd, slapadd) paths, or None when OpenLDAP is not installed."""
    slapd = shutil.which("slapd") or ("/usr/sbin/slapd" if Path("/usr/sbin/slapd").exists() else None)
    slapadd = shutil.which("slapadd") or ("/usr/sbin/slapadd" if Path("/usr/sbin/slapadd").exists() else None)
    if slapd is None or slapadd is None:
        return None
    return slapd, slapadd


def _module_dir() -> Path | None:
    return next((d for d in MODULE_DIRS if (d / "back_mdb.la").exists() or (d / "back_mdb.so").exists()), None)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _openssl(*args: str, cwd: Path) -> None:
    _run(["openssl", *args], cwd=cwd)


def make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    """A throwaway CA (EC P-256, one day): (certificate, key) PEM files in ``folder``."""
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=folder,
    )  # fmt: skip
    return cert, key


def make_server_certificate(folder: Path, ca: tuple[Path, Path]) -> tuple[Path, Path]:
    """A server certificate for 127.0.0.1 and localhost signed by ``ca``: (certificate, key)."""
    cert, key, csr, ext = (folder / f"server.{s}" for s in ("pem", "key", "csr", "ext"))
    ext.write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
    )
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1",
        cwd=folder,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial",
        "-out", str(cert), "-days", "1", "-extfile", str(ext),
        cwd=folder,
    )  # fmt: skip
    return cert, key


def config_ldif(folder: Path, *, scim_schema: bool = True, tls: tuple[Path, Path, Path] | None = None) -> str:
    """The whole cn=config of the test server: schemas (ours unless ``scim_schema`` is False), mdb,
    sssvlv, indexes, and with ``tls`` = (CA, certificate, key) the TLS files."""
    from scim_ldap.schema import SCHEMA_LDIF  # imported here: the root conftest must load without the ldap extra

    modules = _module_dir()
    tls_lines = ""
    if tls is not None:
        tls_lines = (
            f"olcTLSCACertificateFile: {tls[0]}\nolcTLSCertificateFile: {tls[1]}\nolcTLSCertificateKeyFile: {tls[2]}\n"
        )
    parts = [
        "dn: cn=config\nobjectClass: olcGlobal\ncn: config\nolcThreads: 32\n"
        f"olcPidFile: {folder}/slapd.pid\nolcArgsFile: {folder}/slapd.args\n" + tls_lines,
    ]
    if modules is not None:
        parts.append(
            "dn: cn=module{0},cn=config\nobjectClass: olcModuleList\ncn: module{0}\n"
            f"olcModulePath: {modules}\nolcModuleLoad: back_mdb\nolcModuleLoad: sssvlv\n"
        )
    parts.append("dn: cn=schema,cn=config\nobjectClass: olcSchemaConfig\ncn: schema\n")
    for name in ("core", "cosine", "inetorgperson", "nis"):
        parts.append((SCHEMA_DIR / f"{name}.ldif").read_text())
    if scim_schema:
        parts.append("\n".join(line for line in SCHEMA_LDIF.splitlines() if not line.startswith("#")) + "\n")
    parts.append(
        "dn: olcDatabase={-1}frontend,cn=config\nobjectClass: olcDatabaseConfig\nobjectClass: olcFrontendConfig\n"
        "olcDatabase: {-1}frontend\nolcSizeLimit: unlimited\n"
    )
    # The test user manages cn=config over ldapi:// with SASL EXTERNAL, as root does on a packaged slapd.
    peer = f"gidNumber={os.getgid()}+uidNumber={os.getuid()},cn=peercred,cn=external,cn=auth"
    parts.append(
        "dn: olcDatabase={0}config,cn=config\nobjectClass: olcDatabaseConfig\nolcDatabase: {0}config\n"
        f"olcRootDN: {ROOT_DN}\nolcAccess: to * by dn.exact={peer} manage by * break\n"
    )
    parts.append(
        "dn: olcDatabase={1}mdb,cn=config\nobjectClass: olcDatabaseConfig\nobjectClass: olcMdbConfig\n"
        f"olcDatabase: {{1}}mdb\nolcDbDirectory: {folder}/data\nolcSuffix: {BASE_DN}\nolcRootDN: {ROOT_DN}\n"
        f"olcRootPW: {ROOT_PASSWORD}\nolcDbMaxSize: 1073741824\nolcDbNoSync: TRUE\nolcSizeLimit: unlimited\n"
        "olcDbIndex: objectClass eq\nolcDbIndex: entryUUID eq\nolcDbIndex: uid eq,sub\nolcDbIndex: mail eq,sub\n"
        "olcDbIndex: member eq\nolcDbIndex: cn eq,sub\n"
        + ("olcDbIndex: scimDeleted eq\nolcDbIndex: scimPrimaryEmail eq\nolcDbIndex: scimExternalId eq\n" * scim_schema)
    )
    parts.append(
        "dn: olcOverlay={0}sssvlv,olcDatabase={1}mdb,cn=config\nobjectClass: olcOverlayConfig\n"
        "objectClass: olcSssVlvConfig\nolcOverlay: {0}sssvlv\nolcSssVlvMax: 64\nolcSssVlvMaxKeys: 5\n"
        "olcSssVlvMaxPerConn: 16\n"
    )
    return "\n".join(p.strip("\n") + "\n" for p in parts)


def start(folder: Path, *, scim_schema: bool = True, tls: bool = True, preload: Path | None = None) -> Slapd:
    """Generate the config in ``folder``, load the base entry and start slapd; raise RuntimeError on failure.

    ``tls`` (when the openssl CLI is present) adds the throwaway CA, the server certificate and an
    ``ldaps://`` listener; ``scim_schema`` False leaves our schema out (to load it as an operator would).
    ``preload`` is an LDIF file of entries below the base, bulk-loaded with ``slapadd -q`` before the
    server starts (far quicker than adding them over the protocol; slapadd adds entryUUID and timestamps).
    """
    binaries = find_binaries()
    if binaries is None:
        raise RuntimeError("slapd/slapadd not found")
    slapd_bin, slapadd_bin = binaries
    conf_dir, data_dir = folder / "slapd.d", folder / "data"
    conf_dir.mkdir(parents=True)
    data_dir.mkdir()
    tls_files = None
    if tls and shutil.which("openssl"):
        ca = make_ca(folder, "test-ca")
        tls_files = (ca[0], *make_server_certificate(folder, ca))
    (folder / "config.ldif").write_text(config_ldif(folder, scim_schema=scim_schema, tls=tls_files))
    _run([slapadd_bin, "-n0", "-F", str(conf_dir), "-l", str(folder / "config.ldif")])
    (folder / "base.ldif").write_text(
        f"dn: {BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\ndc: scim\no: scim\n"
    )
    _run([slapadd_bin, "-n1", "-F", str(conf_dir), "-l", str(folder / "base.ldif")])
    if preload is not None:
        _run([slapadd_bin, "-q", "-n1", "-F", str(conf_dir), "-l", str(preload)])
    port = _free_port()
    url = f"ldap://127.0.0.1:{port}"
    ldapi_url = "ldapi://" + quote(str(folder / "ldapi"), safe="")
    listeners = [url + "/", ldapi_url + "/"]
    ldaps_url = None
    if tls_files is not None:
        ldaps_port = _free_port()
        ldaps_url = f"ldaps://127.0.0.1:{ldaps_port}"
        listeners.append(ldaps_url + "/")
    log = (folder / "slapd.log").open("wb")
    argv = [slapd_bin, "-F", str(conf_dir), "-h", " ".join(listeners), "-d", "0"]
    process = subprocess.Popen(argv, stdout=log, stderr=log)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"slapd exited with {process.returncode}: {(folder / 'slapd.log').read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                pass
            if ldaps_url is not None:
                with socket.create_connection(("127.0.0.1", ldaps_port), timeout=0.2):
                    pass
            return Slapd(
                url,
                BASE_DN,
                ROOT_DN,
                ROOT_PASSWORD,
                process,
                folder,
                ldaps_url=ldaps_url,
                ldapi_url=ldapi_url,
                ca_file=str(tls_files[0]) if tls_files else None,
            )
        except OSError:
            time.sleep(0.05)
    process.kill()
    process.wait()
    raise RuntimeError("slapd did not listen within 10 s")


def ldif_entry(dn: str, attributes: dict[str, list[str]]) -> str:
    """One LDIF record (RFC 2849); values that are not safe strings are base64-encoded."""
    lines = [f"dn: {dn}"]
    for name, found in attributes.items():
        for value in found:
            safe = value.isascii() and value.isprintable() and not value.startswith((" ", ":", "<"))
            if safe and not value.endswith(" "):
                lines.append(f"{name}: {value}")
            else:
                lines.append(f"{name}:: {base64.b64encode(value.encode()).decode()}")
    return "\n".join(lines) + "\n\n"


def _run(argv: list[str], cwd: Path | None = None) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=cwd)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr or result.stdout}")


# -- the session's directory -----------------------------------------------------------------------


def why_no_directory() -> str | None:
    """Why no LDAP directory can be had for the tests (None when the ldap extra is installed and either
    ``SCIM_TEST_LDAP_URL`` is set or slapd is installed)."""
    try:
        import ldap3  # noqa: F401
        import scim_ldap  # noqa: F401
    except ImportError as exc:
        return f"the ldap extra is not installed (pip install -e '.[ldap]'): {exc}"
    if os.environ.get(URL_ENV) or find_binaries() is not None:
        return None
    return f"OpenLDAP slapd is not installed (apt-get install slapd ldap-utils) and {URL_ENV} is unset"


def directory_settings(slapd: Slapd | None) -> dict[str, str]:
    """The ``SCIM_LDAP_*`` settings of the session's directory: ``slapd``, or with None the server named by
    ``SCIM_TEST_LDAP_URL``."""
    if slapd is None:
        return {
            "SCIM_LDAP_URL": os.environ[URL_ENV],
            "SCIM_LDAP_BASE_DN": os.environ.get("SCIM_TEST_LDAP_BASE_DN", BASE_DN),
            "SCIM_LDAP_BIND_DN": os.environ.get("SCIM_TEST_LDAP_BIND_DN", ""),
            "SCIM_LDAP_BIND_PASSWORD": os.environ.get("SCIM_TEST_LDAP_BIND_PASSWORD", ""),
        }
    return {
        "SCIM_LDAP_URL": slapd.url,
        "SCIM_LDAP_BASE_DN": slapd.base_dn,
        "SCIM_LDAP_BIND_DN": slapd.bind_dn,
        "SCIM_LDAP_BIND_PASSWORD": slapd.password,
        "SCIM_LDAP_POOL_SIZE": "16",
    }


class Subtrees:
    """A fresh ``ou=`` below the directory's base DN per folder (an ``api_helpers.BackendChooser``).

    :meth:`config_for` returns the settings of an ldap-backed app whose base DN is that subtree, so
    each test's organizations live apart from every other test's; the same folder gives the same
    subtree, so two apps on one folder are two workers on one directory. Creating one costs one
    LDAP add. ``drop=True`` deletes the subtrees in :meth:`drop_all` (wanted on a shared server named by
    ``SCIM_TEST_LDAP_URL``; a private slapd is thrown away whole at the end of the session).
    """

    def __init__(self, settings: dict[str, str], *, drop: bool = False, pool_size: int = 4) -> None:
        self.settings = settings
        self.drop = drop
        self.pool_size = pool_size
        self.by_folder: dict[Path, str] = {}

    def _connection(self) -> Any:
        import ldap3

        server = ldap3.Server(self.settings["SCIM_LDAP_URL"], connect_timeout=5)
        bind_dn = self.settings.get("SCIM_LDAP_BIND_DN") or None
        password = self.settings.get("SCIM_LDAP_BIND_PASSWORD") or None
        return ldap3.Connection(server, bind_dn, password, auto_bind=True, receive_timeout=10, raise_exceptions=True)

    def new_base(self, tag: str = "t") -> str:
        """Create an empty ``ou=<tag>-<random>`` under the directory's base DN and return its DN."""
        name = f"{tag}-{uuid.uuid4().hex[:12]}"
        dn = f"ou={name},{self.settings['SCIM_LDAP_BASE_DN']}"
        conn = self._connection()
        try:
            conn.add(dn, ["organizationalUnit"], {"ou": name})
        finally:
            conn.unbind()
        return dn

    def config_for(self, folder: Path) -> dict[str, str]:
        """The ``SCIM_BACKEND``/``SCIM_LDAP_*`` settings of an app for ``folder``: its own subtree."""
        key = Path(folder).resolve()
        if key not in self.by_folder:
            self.by_folder[key] = self.new_base()
        return {
            **self.settings,
            "SCIM_BACKEND": "ldap",
            "SCIM_LDAP_BASE_DN": self.by_folder[key],
            "SCIM_LDAP_POOL_SIZE": str(self.pool_size),
        }

    def remove(self, base: str) -> None:
        """Delete the subtree ``base`` (made by :meth:`new_base`) when made with ``drop=True``."""
        if self.drop:
            conn = self._connection()
            try:
                delete_subtree(conn, base)
            finally:
                conn.unbind()

    def drop_all(self) -> None:
        """Delete the subtrees made here (children first), when made with ``drop=True``; forget them either way."""
        if self.drop and self.by_folder:
            conn = self._connection()
            try:
                for base in self.by_folder.values():
                    delete_subtree(conn, base)
            finally:
                conn.unbind()
        self.by_folder.clear()


def delete_subtree(conn: Any, base: str) -> None:
    """Delete ``base`` and every entry below it, deepest first (OpenLDAP's mdb has no tree-delete control);
    ``conn`` is a bound ``ldap3.Connection`` that raises on errors."""
    import ldap3
    import ldap3.core.exceptions

    try:
        found = conn.extend.standard.paged_search(
            base, "(objectClass=*)", ldap3.SUBTREE, attributes=["1.1"], paged_size=500, generator=False
        )
    except ldap3.core.exceptions.LDAPNoSuchObjectResult:
        return
    names = [entry["dn"] for entry in found or [] if entry.get("type") == "searchResEntry"]
    for dn in sorted(names, key=lambda n: n.count(","), reverse=True):
        conn.delete(dn)
