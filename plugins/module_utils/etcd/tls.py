# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The TLS side of an etcd connection: the files checked before connecting, and what a failed handshake means.

gRPC reports a CA file that is not PEM, a key that does not match its certificate or https:// to a
plain-HTTP server all as "TLS handshake failed" (or "Socket closed"). :func:`load_tls_files` refuses
bad files first, naming the file and what is wrong; :func:`speaks_tls` tells, after a failed
connection, whether the server speaks TLS at all.
"""

from __future__ import annotations

import datetime
import re
import socket
import ssl

try:
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    HAS_CRYPTOGRAPHY = True
except ImportError:  # checked in load_tls_files: only TLS options need it
    HAS_CRYPTOGRAPHY = False

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")
_CERTIFICATE = b"CERTIFICATE"


class TLSInputError(ValueError):
    """A TLS option names a file that cannot serve: one line naming the option, the file and the fault."""


def _read(path: str, option: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise TLSInputError(f"{option} {path}: cannot read ({exc.strerror})") from None
    if not data.strip():
        raise TLSInputError(f"{option} {path}: the file is empty")
    return data


def _blocks(data: bytes) -> list[bytes]:
    return _PEM_BLOCK.findall(data)


def _not_pem(option: str, path: str, want: str, data: bytes) -> TLSInputError:
    hint = " (it looks like DER: convert it with openssl)" if data[:1] == b"\x30" else ""
    return TLSInputError(f"{option} {path}: not PEM, no '-----BEGIN {want}-----' block found{hint}")


def _certificates(path: str, option: str) -> tuple[bytes, list]:
    """The file's bytes and its parsed certificates (at least one), or TLSInputError."""
    data = _read(path, option)
    blocks = _blocks(data)
    if not blocks:
        raise _not_pem(option, path, "CERTIFICATE", data)
    if _CERTIFICATE not in blocks:
        kinds = ", ".join(sorted({b.decode() for b in blocks}))
        raise TLSInputError(f"{option} {path}: holds {kinds}, not a certificate")
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise TLSInputError(f"{option} {path}: a CERTIFICATE block that does not parse ({exc})") from None
    return data, certs


def _expiry(cert) -> datetime.datetime:
    value = getattr(cert, "not_valid_after_utc", None)  # cryptography >= 42
    return value if value is not None else cert.not_valid_after.replace(tzinfo=datetime.UTC)


def _private_key(path: str, option: str):
    data = _read(path, option)
    blocks = _blocks(data)
    if not blocks:
        raise _not_pem(option, path, "PRIVATE KEY", data)
    if not any(b.endswith(b"PRIVATE KEY") for b in blocks):
        kinds = ", ".join(sorted({b.decode() for b in blocks}))
        swapped = " (client_cert and client_key swapped?)" if _CERTIFICATE in blocks else ""
        raise TLSInputError(f"{option} {path}: holds {kinds}, not a private key{swapped}")
    try:
        return data, serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise TLSInputError(f"{option} {path}: the key is encrypted; give an unencrypted key "
                            "(e.g. openssl pkey -in KEY -out KEY.plain)") from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise TLSInputError(f"{option} {path}: a PRIVATE KEY block that does not parse ({exc})") from None


def _public_der(key) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_tls_files(ca_cert: str | None, client_cert: str | None, client_key: str | None) -> dict:
    """The PEM bytes gRPC takes (``root_certificates``, ``certificate_chain``, ``private_key``), checked.

    Refused with TLSInputError: unreadable or empty files, files that are not PEM or hold the wrong
    kind of PEM block, blocks that do not parse, an encrypted key, an expired client certificate and
    a client key that does not belong to the client certificate.
    """
    files = {"root_certificates": None, "certificate_chain": None, "private_key": None}
    if not (ca_cert or client_cert or client_key):
        return files
    if not HAS_CRYPTOGRAPHY:
        raise TLSInputError("the Python library cryptography is required to check ca_cert, client_cert and client_key")
    if ca_cert:
        files["root_certificates"] = _certificates(ca_cert, "ca_cert")[0]
    if client_cert:
        files["certificate_chain"], certs = _certificates(client_cert, "client_cert")
        expires = _expiry(certs[0])
        if expires <= datetime.datetime.now(datetime.UTC):
            raise TLSInputError(f"client_cert {client_cert}: expired on {expires:%Y-%m-%d %H:%M} UTC")
    if client_key:
        files["private_key"], key = _private_key(client_key, "client_key")
        if client_cert and _public_der(key.public_key()) != _public_der(certs[0].public_key()):
            raise TLSInputError(f"client_key {client_key}: does not match client_cert {client_cert} "
                                "(their public keys differ)")
    return files


def speaks_tls(host: str, port: int, timeout: float) -> bool | None:
    """Whether the server at host:port answers a TLS ClientHello in TLS (None: cannot tell).

    For diagnosis after gRPC failed: no certificate is verified and nothing is sent after the handshake.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock, \
                context.wrap_socket(sock, server_hostname=None):
            return True
    except ssl.SSLEOFError:
        return False  # the server hung up on the ClientHello: not a TLS server
    except ssl.SSLError as exc:
        reason = f"{exc.reason or ''} {exc}".upper()
        if "ALERT" in reason:
            return True  # it answered with a TLS alert (e.g. it wants a client certificate)
        if "WRONG_VERSION_NUMBER" in reason or "RECORD" in reason or "HTTP_REQUEST" in reason:
            return False  # the reply is not a TLS record (plain HTTP)
        return None
    except ConnectionResetError:
        return False
    except OSError:
        return None
