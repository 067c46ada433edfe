# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options shared by every module that talks to etcd v3."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  endpoints:
    description:
      - etcd v3 client URLs of one cluster. At connect all of them are probed at once (a status
        request each, within one budget of O(timeout)) and the first healthy member is used, preferring
        the order given; a stopped, frozen or leaderless member costs no call its timeout. When the member
        in use fails, the others are probed the same way. When none answers, the error names each one's cause.
      - Use C(https://) for TLS. A bare C(host:port) means C(http://); without a port, 2379.
      - Required; there is no default. The roles pass the dedicated Calico etcd's endpoints,
        C(calico_etcd_endpoints) of role C(kubescale.calico.calico_defaults) (C(https://<member>:2389)).
        In your own plays, set it once with C(module_defaults) for the C(group/kubescale.calico.etcd) action group.
    type: list
    elements: str
    required: true
  ca_cert:
    description:
      - CA bundle (PEM) that signed the etcd server certificates. TLS server verification is always on;
        without this option the system trust store is used.
      - The TLS files are checked before connecting; a file that cannot be read, is not PEM, holds the
        wrong kind of block, an expired O(client_cert), an encrypted O(client_key) or a key that does not
        belong to O(client_cert) is refused with a message naming the file.
    type: path
    aliases: [cacert]
  client_cert:
    description: Client certificate (PEM) for etcd client-certificate auth. Requires O(client_key).
    type: path
    aliases: [cert]
  client_key:
    description: Private key (PEM, unencrypted) of O(client_cert).
    type: path
    aliases: [key]
  user:
    description: etcd user name for password auth. Requires O(password).
    type: str
  password:
    description: Password of O(user).
    type: str
  timeout:
    description:
      - Seconds to wait for each etcd call, and the whole budget for choosing an endpoint at connect.
      - Must be greater than 0.
    type: float
    default: 10.0
requirements:
  - grpcio >= 1.85.1 and protobuf >= 7.35.1 on the host that runs the module (C(pip install etcd3) plus those)
notes:
  - The collection ships etcd's API stubs generated for current protobuf, so the compiled protobuf is used;
    no environment variable is needed.
"""
