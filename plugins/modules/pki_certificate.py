#!/usr/bin/python
# Copyright: kubescale.calico developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pki_certificate
short_description: Keep a CA, server, peer or client certificate and its key in place
version_added: 0.1.0
description:
  - Makes O(path) and O(key_path) hold an ECDSA P-256 key and a certificate that fits the request.
  - An existing certificate is kept when its key matches, it is signed by O(ca_path), its common name,
    subject alternative names and extended key usage are the requested ones and it does not expire
    within O(renew_before_days). Otherwise a new certificate is issued (the key is kept).
  - A O(ca_key_path) that is not the private key of O(ca_path) is refused before anything is written
    (what it signed would never verify). So are a missing directory, an unknown O(owner) or O(group) and a
    malformed O(mode).
  - Meant for small internal PKIs such as the dedicated Calico etcd (role C(kubescale.calico.calico_etcd)),
    where C(community.crypto) may not be installed. Needs the Python C(cryptography) library
    (Debian package C(python3-cryptography)) on the host that runs it.
author:
  - kubescale.calico developers (@kubescale)
options:
  path:
    description: Certificate file (PEM).
    type: path
    required: true
  key_path:
    description: Private key file (PEM, PKCS#8, unencrypted). Created with mode C(0600) when missing.
    type: path
    required: true
  kind:
    description:
      - V(ca) is a self-signed CA; V(server) has serverAuth, V(client) clientAuth, V(peer) both.
    type: str
    choices: [ca, server, peer, client]
    required: true
  common_name:
    description: Subject common name. For etcd client certificates this is the etcd user name.
    type: str
    required: true
  subject_alt_names:
    description: Entries like C(IP:10.0.0.1) or C(DNS:etcd-1); a bare address or name is recognised.
    type: list
    elements: str
    default: []
  ca_path:
    description: CA certificate that signs the certificate. Required unless O(kind=ca).
    type: path
  ca_key_path:
    description: Private key of the CA. Required unless O(kind=ca).
    type: path
  days:
    description: Validity of a newly issued certificate.
    type: int
    default: 825
  renew_before_days:
    description: Issue a new certificate when the current one expires within this many days.
    type: int
    default: 30
  return_content:
    description:
      - Return the certificate and the private key (PEM) so that they can be copied to other hosts
        without reading the files again. Use C(no_log) on the task.
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.files
attributes:
  check_mode:
    description:
      - Reports what would be issued without writing keys or certificates, and the mode, owner and group
        changes a real run would make to files that exist (RV(actions) names them).
    support: full
  diff_mode:
    description: No diff is returned (certificates and keys are not shown).
    support: none
requirements:
  - cryptography >= 3.1
"""

EXAMPLES = r"""
- name: CA for the Calico etcd
  kubescale.calico.pki_certificate:
    path: /etc/calico-etcd/ca/ca.crt
    key_path: /etc/calico-etcd/ca/ca.key
    kind: ca
    common_name: calico-etcd-ca
    days: 3650

- name: Server certificate of one member
  kubescale.calico.pki_certificate:
    path: /etc/calico-etcd/ca/issued/etcd-1-server.crt
    key_path: /etc/calico-etcd/ca/issued/etcd-1-server.key
    kind: server
    common_name: etcd-1
    subject_alt_names: [IP:10.213.1.11, IP:127.0.0.1, DNS:etcd-1, DNS:localhost]
    ca_path: /etc/calico-etcd/ca/ca.crt
    ca_key_path: /etc/calico-etcd/ca/ca.key
"""

RETURN = r"""
actions:
  description:
    - What was done, in plain sentences (empty when nothing changed), including the mode, owner and group
      changes of the files (in check mode, what a real run would do).
  returned: always
  type: list
  elements: str
  sample: ["issued server certificate /etc/calico-etcd/ca/issued/etcd-1-server.crt for etcd-1 (certificate missing)",
           "set mode of /etc/calico-etcd/ca/issued/etcd-1-server.key to 0600 (was 0644)"]
not_after:
  description: Expiry of the certificate now in place (null in check mode when it would change).
  returned: always
  type: str
  sample: "2029-03-03T12:00:00+00:00"
serial:
  description: Serial number of the certificate now in place, as a decimal string.
  returned: always
  type: str
certificate:
  description: The certificate (PEM).
  returned: when O(return_content=true) and not in check mode with a change pending
  type: str
private_key:
  description: The private key (PEM). Secret.
  returned: when O(return_content=true) and not in check mode with a change pending
  type: str
"""

import os
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.kubescale.calico.plugins.module_utils.pki import (
    CRYPTOGRAPHY_IMPORT_ERROR,
    HAS_CRYPTOGRAPHY,
    KINDS,
    PkiError,
    check_file_options,
    ensure_certificate,
)


def _attribute_sentences(path: str, diff: dict) -> list[str]:
    before, after = diff.get("before", {}), diff.get("after", {})
    return [f"set {attr} of {path} to {after[attr]} (was {before.get(attr)})" for attr in ("mode", "owner", "group")
            if attr in after]


def _apply_file_attributes(module: AnsibleModule, paths: tuple[str, str], key_path: str) -> list[str]:
    """Owner/group/mode/SELinux of the files as requested (the key always 0600); sentences of what changed.

    In check mode nothing is changed, but a file that exists is compared all the same, so the
    report says what a real run would fix. A file that does not exist yet is already reported.
    """
    actions = []
    for target in paths:
        if module.check_mode and not os.path.lexists(target):
            continue
        file_args = module.load_file_common_arguments(module.params, path=target)
        if target == key_path:
            file_args["mode"] = "0600"
        diff: dict = {}
        if module.set_fs_attributes_if_different(file_args, False, diff=diff):
            actions += _attribute_sentences(target, diff) or [f"set file attributes of {target}"]
    return actions


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "key_path": {"type": "path", "required": True, "no_log": False},
            "kind": {"type": "str", "required": True, "choices": list(KINDS)},
            "common_name": {"type": "str", "required": True},
            "subject_alt_names": {"type": "list", "elements": "str", "default": []},
            "ca_path": {"type": "path"},
            "ca_key_path": {"type": "path", "no_log": False},
            "days": {"type": "int", "default": 825},
            "renew_before_days": {"type": "int", "default": 30},
            "return_content": {"type": "bool", "default": False},
        },
        required_if=[("kind", "server", ("ca_path", "ca_key_path")),
                     ("kind", "peer", ("ca_path", "ca_key_path")),
                     ("kind", "client", ("ca_path", "ca_key_path"))],
        add_file_common_args=True,
        supports_check_mode=True,
    )
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography"),
                         exception="".join(traceback.format_exception(CRYPTOGRAPHY_IMPORT_ERROR)))
    p = module.params
    try:
        check_file_options(p["path"], p["key_path"], p["owner"], p["group"], p["mode"])
        result = ensure_certificate(
            p["path"], p["key_path"], p["kind"], p["common_name"], p["subject_alt_names"],
            p["ca_path"], p["ca_key_path"], p["days"], p["renew_before_days"], module.check_mode,
            p["return_content"])
    except PkiError as exc:
        module.fail_json(msg=str(exc))
    attribute_actions = _apply_file_attributes(module, (p["path"], p["key_path"]), p["key_path"])
    result["actions"] += attribute_actions
    changed = result.pop("changed") or bool(attribute_actions)
    module.exit_json(changed=changed, **result)


if __name__ == "__main__":
    main()
