"""Start a private OpenLDAP slapd for the tests: its own cn=config in a temporary folder, 127.0.0.1, a free port.

slapd runs in the foreground (``-d 0``) as a child of the test process, so the fixture owns its PID
and sees its errors (a daemonised slapd logs to syslog, which these machines lack).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from scim_ldap.schema import SCHEMA_LDIF

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


def config_ldif(folder: Path) -> str:
    """The whole cn=config of the test server: schemas, mdb, sssvlv, indexes."""
    modules = _module_dir()
    parts = [
        "dn: cn=config\nobjectClass: olcGlobal\ncn: config\nolcThreads: 32\n"
        f"olcPidFile: {folder}/slapd.pid\nolcArgsFile: {folder}/slapd.args\n",
    ]
    if modules is not None:
        parts.append(
            "dn: cn=module{0},cn=config\nobjectClass: olcModuleList\ncn: module{0}\n"
            f"olcModulePath: {modules}\nolcModuleLoad: back_mdb\nolcModuleLoad: sssvlv\n"
        )
    parts.append("dn: cn=schema,cn=config\nobjectClass: olcSchemaConfig\ncn: schema\n")
    for name in ("core", "cosine", "inetorgperson", "nis"):
        parts.append((SCHEMA_DIR / f"{name}.ldif").read_text())
    parts.append("\n".join(line for line in SCHEMA_LDIF.splitlines() if not line.startswith("#")) + "\n")
    parts.append(
        "dn: olcDatabase={-1}frontend,cn=config\nobjectClass: olcDatabaseConfig\nobjectClass: olcFrontendConfig\n"
        "olcDatabase: {-1}frontend\nolcSizeLimit: unlimited\n"
    )
    parts.append(
        "dn: olcDatabase={0}config,cn=config\nobjectClass: olcDatabaseConfig\nolcDatabase: {0}config\n"
        f"olcRootDN: {ROOT_DN}\n"
    )
    parts.append(
        "dn: olcDatabase={1}mdb,cn=config\nobjectClass: olcDatabaseConfig\nobjectClass: olcMdbConfig\n"
        f"olcDatabase: {{1}}mdb\nolcDbDirectory: {folder}/data\nolcSuffix: {BASE_DN}\nolcRootDN: {ROOT_DN}\n"
        f"olcRootPW: {ROOT_PASSWORD}\nolcDbMaxSize: 1073741824\nolcDbNoSync: TRUE\nolcSizeLimit: unlimited\n"
        "olcDbIndex: objectClass eq\nolcDbIndex: entryUUID eq\nolcDbIndex: uid eq,sub\nolcDbIndex: mail eq,sub\n"
        "olcDbIndex: member eq\nolcDbIndex: cn eq,sub\nolcDbIndex: scimDeleted eq\nolcDbIndex: scimPrimaryEmail eq\n"
        "olcDbIndex: scimExternalId eq\n"
    )
    parts.append(
        "dn: olcOverlay={0}sssvlv,olcDatabase={1}mdb,cn=config\nobjectClass: olcOverlayConfig\n"
        "objectClass: olcSssVlvConfig\nolcOverlay: {0}sssvlv\nolcSssVlvMax: 64\nolcSssVlvMaxKeys: 5\n"
        "olcSssVlvMaxPerConn: 16\n"
    )
    return "\n".join(p.strip("\n") + "\n" for p in parts)


def start(folder: Path) -> Slapd:
    """Generate the config in ``folder``, load the base entry and start slapd; raise RuntimeError on failure."""
    binaries = find_binaries()
    if binaries is None:
        raise RuntimeError("slapd/slapadd not found")
    slapd_bin, slapadd_bin = binaries
    conf_dir, data_dir = folder / "slapd.d", folder / "data"
    conf_dir.mkdir(parents=True)
    data_dir.mkdir()
    (folder / "config.ldif").write_text(config_ldif(folder))
    _run([slapadd_bin, "-n0", "-F", str(conf_dir), "-l", str(folder / "config.ldif")])
    (folder / "base.ldif").write_text(
        f"dn: {BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\ndc: scim\no: scim\n"
    )
    _run([slapadd_bin, "-n1", "-F", str(conf_dir), "-l", str(folder / "base.ldif")])
    port = _free_port()
    url = f"ldap://127.0.0.1:{port}"
    log = (folder / "slapd.log").open("wb")
    process = subprocess.Popen([slapd_bin, "-F", str(conf_dir), "-h", url + "/", "-d", "0"], stdout=log, stderr=log)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"slapd exited with {process.returncode}: {(folder / 'slapd.log').read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return Slapd(url, BASE_DN, ROOT_DN, ROOT_PASSWORD, process, folder)
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("slapd did not listen within 10 s")


def _run(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr or result.stdout}")
