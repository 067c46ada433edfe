# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options shared by every module that talks to etcd v3."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  endpoints:
    description:
      - etcd v3 client URLs, tried in order; when one cannot be reached the next is used.
      - Use C(https://) for TLS. A bare C(host:port) means C(http://).
    type: list
    elements: str
    default: ["http://127.0.0.1:2379"]
  ca_cert:
    description:
      - CA bundle that signed the etcd server certificates. TLS server verification is always on;
        without this option the system trust store is used.
    type: path
    aliases: [cacert]
  client_cert:
    description: Client certificate for etcd client-certificate auth. Requires O(client_key).
    type: path
    aliases: [cert]
  client_key:
    description: Private key of O(client_cert).
    type: path
    aliases: [key]
  user:
    description: etcd user name for password auth. Requires O(password).
    type: str
  password:
    description: Password of O(user).
    type: str
  timeout:
    description: Seconds to wait for each etcd call.
    type: float
    default: 10.0
requirements:
  - grpcio >= 1.85.1 and protobuf >= 7.35.1 on the host that runs the module (C(pip install etcd3) plus those)
notes:
  - The collection ships etcd's API stubs generated for current protobuf, so the compiled protobuf is used;
    no environment variable is needed.
"""
