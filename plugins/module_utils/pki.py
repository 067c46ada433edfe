"""A small X.509 PKI for etcd: one CA, server/peer/client certificates, idempotent.

Used by the ``pki_certificate`` module. It keeps a certificate when it still fits (key pair matches,
signed by the given CA, same subject name, SANs and usage, not expiring soon) and issues a new one
otherwise, so a rerun changes nothing and a new member address gives exactly one new certificate.
Needs the ``cryptography`` library on the host that runs it.
"""

from __future__ import annotations

import datetime
import grp
import ipaddress
import os
import pwd
import re
import tempfile

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - reported by the module
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = _exc

KINDS = ("ca", "server", "peer", "client")


class PkiError(Exception):
    """A certificate could not be read, checked or written; the message names the file."""


def _usages(kind: str) -> list:
    return {
        "ca": [],
        "server": [ExtendedKeyUsageOID.SERVER_AUTH],
        "client": [ExtendedKeyUsageOID.CLIENT_AUTH],
        "peer": [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
    }[kind]


def parse_sans(sans: list[str]) -> list:
    """``["IP:10.0.0.1", "DNS:etcd-1", "10.0.0.2", "etcd-2"]`` -> x509 GeneralNames (sorted, unique)."""
    out: dict[str, object] = {}
    for raw in sans:
        item = str(raw).strip()
        kind, _sep, value = item.partition(":") if item[:3] in ("IP:", "DNS") else ("", "", item)
        if not kind:
            try:
                ipaddress.ip_address(value)
                kind = "IP"
            except ValueError:
                kind = "DNS"
        if kind == "IP":
            try:
                out[f"IP:{ipaddress.ip_address(value)}"] = x509.IPAddress(ipaddress.ip_address(value))
            except ValueError as exc:
                raise PkiError(f"subject_alt_names: {item!r} is not an IP address") from exc
        elif kind == "DNS" and value:
            if not _DNS_NAME.match(value) or len(value) > 253:
                raise PkiError(f"subject_alt_names: {item!r} is not a DNS name (letters, digits, '-', '.', "
                               "an optional leading '*.')")
            out[f"DNS:{value}"] = x509.DNSName(value)
        else:
            raise PkiError(f"subject_alt_names: {item!r} must be IP:<address>, DNS:<name> or a bare name/address")
    return [out[k] for k in sorted(out)]


_SYMBOLIC_MODE = re.compile(r"^[ugoa]*[-+=]([rwxXst]*|[ugo])(,[ugoa]*[-+=]([rwxXst]*|[ugo]))*$")
_DNS_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_DNS_NAME = re.compile(rf"^(\*\.)?{_DNS_LABEL}(\.{_DNS_LABEL})*\.?$")


def check_file_options(path: str, key_path: str, owner: str | None = None, group: str | None = None,
                       mode: object = None) -> None:
    """Refuse file options that would fail after the first write (missing directory, unknown owner, bad mode)."""
    for name, file in (("path", path), ("key_path", key_path)):
        directory = os.path.dirname(file) or "."
        if not os.path.isdir(directory):
            raise PkiError(f"{name}: directory {directory} of {file} does not exist")
        if os.path.isdir(file):
            raise PkiError(f"{name}: {file} is a directory, not a file")
    if owner is not None and not str(owner).isdigit():
        try:
            pwd.getpwnam(str(owner))
        except KeyError:
            raise PkiError(f"owner: no such user {owner!r} on this host") from None
    if group is not None and not str(group).isdigit():
        try:
            grp.getgrnam(str(group))
        except KeyError:
            raise PkiError(f"group: no such group {group!r} on this host") from None
    if mode is not None and not isinstance(mode, int):
        text = str(mode)
        if not (re.fullmatch(r"0?[0-7]{3,4}", text) or _SYMBOLIC_MODE.match(text)):
            raise PkiError(f"mode: {text!r} is neither octal (e.g. '0640') nor symbolic (e.g. 'u=rw,g=r')")


def _san_keys(names: list) -> set[str]:
    keys = set()
    for n in names:
        if isinstance(n, x509.IPAddress):
            keys.add(f"IP:{n.value}")
        elif isinstance(n, x509.DNSName):
            keys.add(f"DNS:{n.value}")
    return keys


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PkiError(f"{path}: cannot read: {exc.strerror}") from exc


def _write(path: str, data: bytes, mode: int) -> None:
    directory = os.path.dirname(path) or "."
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".pki-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        raise PkiError(f"{path}: cannot write: {exc.strerror}") from exc


def load_key(path: str):
    data = _read(path)
    if data is None:
        return None
    try:
        return serialization.load_pem_private_key(data, password=None)
    except ValueError as exc:
        raise PkiError(f"{path}: not a PEM private key without passphrase") from exc


def load_cert(path: str):
    data = _read(path)
    if data is None:
        return None
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise PkiError(f"{path}: not a PEM certificate") from exc


def not_after(cert) -> datetime.datetime:
    """Expiry as an aware UTC datetime (cryptography < 42 has only the naive attribute)."""
    value = getattr(cert, "not_valid_after_utc", None)
    return value if value is not None else cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _public_der(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def check_ca_pair(ca_cert, ca_key, ca_path: str, ca_key_path: str) -> None:
    """Refuse a CA key that is not the key of the CA certificate (what it signed would not verify)."""
    if _public_der(ca_cert) != _public_der(ca_key):
        raise PkiError(f"ca_key_path: {ca_key_path} is not the private key of the CA certificate {ca_path} "
                       "(their public keys differ); nothing was written")


def why_reissue(cert, key, kind: str, common_name: str, sans: list, ca_cert, renew_before_days: int) -> str | None:
    """The reason ``cert`` no longer fits, or None when it does."""
    if cert is None:
        return "certificate missing"
    if _public_der(cert) != _public_der(key):
        return "certificate does not match the private key"
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not cns or cns[0].value != common_name:
        return "common name differs"
    expiry = not_after(cert)
    if expiry - _now() < datetime.timedelta(days=renew_before_days):
        return f"expires {expiry.isoformat()} (within {renew_before_days} days)"
    issuer = ca_cert if ca_cert is not None else cert
    if cert.issuer != issuer.subject:
        return "issued by another CA"
    try:
        issuer.public_key().verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
    except (InvalidSignature, TypeError):
        return "signature does not verify with the CA"
    try:
        have = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        have_sans = _san_keys(list(have))
    except x509.ExtensionNotFound:
        have_sans = set()
    if have_sans != _san_keys(sans):
        return "subject alternative names differ"
    try:
        eku = list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        eku = []
    if sorted(o.dotted_string for o in eku) != sorted(o.dotted_string for o in _usages(kind)):
        return "key usage differs"
    return None


def build_cert(key, kind: str, common_name: str, sans: list, days: int, ca_cert=None, ca_key=None):
    """Issue a certificate for ``key`` (self-signed when ``kind == 'ca'``)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    is_ca = kind == "ca"
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name if is_ca else ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if is_ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
    else:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_encipherment=True, key_cert_sign=False, crl_sign=False,
            content_commitment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
        builder = builder.add_extension(x509.ExtendedKeyUsage(_usages(kind)), critical=False)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(key if is_ca else ca_key, hashes.SHA256())


def ensure_certificate(path: str, key_path: str, kind: str, common_name: str, sans: list[str] | None = None,
                       ca_path: str | None = None, ca_key_path: str | None = None, days: int = 825,
                       renew_before_days: int = 30, check_mode: bool = False, return_content: bool = False) -> dict:
    """Make ``path``/``key_path`` hold a fitting certificate and key. Returns what was done."""
    if kind not in KINDS:
        raise PkiError(f"kind: {kind!r} must be one of {', '.join(KINDS)}")
    if not common_name:
        raise PkiError("common_name: must not be empty")
    if days < 1 or renew_before_days < 0 or renew_before_days >= days:
        raise PkiError("days/renew_before_days: need days >= 1 and 0 <= renew_before_days < days")
    names = parse_sans(sans or [])
    ca_cert = ca_key = None
    if kind != "ca":
        if not ca_path or not ca_key_path:
            raise PkiError(f"ca_path and ca_key_path: required for kind={kind}")
        ca_cert, ca_key = load_cert(ca_path), load_key(ca_key_path)
        if ca_cert is None or ca_key is None:
            raise PkiError(f"ca_path/ca_key_path: {ca_path} or {ca_key_path} does not exist")
        check_ca_pair(ca_cert, ca_key, ca_path, ca_key_path)
    key = load_key(key_path)
    actions: list[str] = []
    new_key = key is None
    if new_key:
        key = ec.generate_private_key(ec.SECP256R1())
        actions.append(f"generated key {key_path}")
    cert = load_cert(path)
    reason = why_reissue(cert, key, kind, common_name, names, ca_cert, renew_before_days)
    if reason:
        actions.append(f"issued {kind} certificate {path} for {common_name} ({reason})")
    if not actions:
        return _result(False, [], cert, key, return_content)
    if check_mode:
        return {"changed": True, "actions": actions, "not_after": None, "serial": None}
    if new_key:
        _write(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()), 0o600)
    if reason:
        cert = build_cert(key, kind, common_name, names, days, ca_cert, ca_key)
        _write(path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return _result(True, actions, cert, key, return_content)


def _result(changed: bool, actions: list[str], cert, key, return_content: bool) -> dict:
    out = {"changed": changed, "actions": actions, "not_after": not_after(cert).isoformat(),
           "serial": str(cert.serial_number)}
    if return_content:
        out["certificate"] = cert.public_bytes(serialization.Encoding.PEM).decode()
        out["private_key"] = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()).decode()
    return out
