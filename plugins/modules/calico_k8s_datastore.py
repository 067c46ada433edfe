#!/usr/bin/python
# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: calico_k8s_datastore
short_description: Point Calico at an etcd through the Kubernetes API (ConfigMap, Secret, rolling restart)
version_added: 0.1.0
description:
  - Sets C(etcd_endpoints) and the certificate path keys (C(etcd_ca), C(etcd_cert), C(etcd_key)) in the
    C(calico-config) ConfigMap, stores the etcd client files in the C(calico-etcd-secrets) Secret
    (C(etcd-ca), C(etcd-cert), C(etcd-key)), and restarts the C(calico-node) DaemonSet so that its pods
    read both, by changing the pod template annotation C(kubescale.io/restartedAt).
  - The pod template also gets C(kubescale.io/calico-datastore-hash), a hash of the desired configuration.
    The DaemonSet is restarted only when that hash differs, so a rerun restarts nothing and a run that
    died between the ConfigMap update and the restart restarts on the next run.
  - Waits until the rollout is done (C(status.observedGeneration) caught up, C(updatedNumberScheduled)
    and C(numberAvailable) equal to C(desiredNumberScheduled)), for a budget derived from the DaemonSet's
    size and update strategy (O(max_unavailable), O(rollout_batch_seconds)), recording progress lines
    (RV(progress)) with an ETA. A timeout says where the rollout stands; a rerun resumes waiting.
  - Other keys of the ConfigMap and Secret are kept. Updates send the C(resourceVersion) that was read;
    a concurrent change is re-read once.
  - Runs where the Kubernetes API is reachable, usually the controller (C(delegate_to) localhost) with
    C(run_once).
author:
  - kubescale.calico developers (@kubescale)
requirements:
  - kubernetes (Python client)
extends_documentation_fragment:
  - kubescale.calico.attributes
attributes:
  check_mode:
    support: full
    details: Reads the objects and reports what would be set and whether calico-node would restart.
  diff_mode:
    support: full
    details: ConfigMap keys before and after; Secret values only as length and sha256 fingerprint.
options:
  kubeconfig:
    description: Path to a kubeconfig file. Used when O(host) is not given (then C(~/.kube/config) by default).
    type: path
  context:
    description: Context of O(kubeconfig) to use.
    type: str
  host:
    description: URL of the Kubernetes API server, for example C(https://10.0.0.1:6443); overrides O(kubeconfig).
    type: str
  api_key:
    description: Bearer token (for example a service account token).
    type: str
  ca_cert:
    description: CA bundle to verify the API server's certificate.
    type: path
    aliases: [ssl_ca_cert]
  validate_certs:
    description: Verify the API server's TLS certificate. Only turn this off for throwaway labs.
    type: bool
    default: true
  request_timeout:
    description: Seconds per API request.
    type: float
    default: 30
  namespace:
    description: Namespace of the Calico objects.
    type: str
    default: kube-system
  configmap_name:
    description: Name of Calico's ConfigMap.
    type: str
    default: calico-config
  secret_name:
    description: Name of the Secret mounted into calico-node with the etcd client files.
    type: str
    default: calico-etcd-secrets
  daemonset_name:
    description: Name of the calico-node DaemonSet.
    type: str
    default: calico-node
  etcd_endpoints:
    description: Client URLs of the etcd Calico should use (stored comma-separated in C(etcd_endpoints)).
    type: list
    elements: str
    required: true
  etcd_ca_cert:
    description: File (on the host the module runs on) with the CA of the etcd; stored as C(etcd-ca).
    type: path
  etcd_client_cert:
    description: Client certificate file for etcd; stored as C(etcd-cert).
    type: path
  etcd_client_key:
    description: Key of O(etcd_client_cert); stored as C(etcd-key).
    type: path
  secrets_mount_path:
    description: Where the Secret is mounted in the calico-node pods; the ConfigMap's path keys point there.
    type: str
    default: /calico-secrets
  restart:
    description: Restart calico-node when the configuration differs from what its pods were started with.
    type: bool
    default: true
  max_unavailable:
    description:
      - The DaemonSet's rolling update strategy, C(spec.updateStrategy.rollingUpdate.maxUnavailable),
        how many calico-node pods are replaced at a time, a number (V(25)) or a percentage of the
        scheduled pods (V(10%), rounded up). Set in the same patch as the restart, and sets the
        strategy type to C(RollingUpdate).
      - Not given, the DaemonSet's own strategy is kept (Kubernetes' default is 1 pod at a time). A
        DaemonSet with C(updateStrategy) C(OnDelete) is refused when a restart is needed, before any
        write, since no pod would be replaced.
      - Recommendation for large clusters, where 1 at a time takes hours (1,000 batches at 1,000
        nodes) - V(10%) (100 pods at a time at 1,000 nodes, 10 batches). Nodes whose calico-node is
        restarting keep their routes (BIRD's graceful restart) but program no new ones for a minute.
    type: str
  wait:
    description:
      - Wait for the DaemonSet rollout to finish. Without waiting the module still reads the DaemonSet
        once and returns its figures and the budget a wait would get (RV(rollout)).
    type: bool
    default: true
  rollout_batch_seconds:
    description:
      - Seconds one batch of O(max_unavailable) pods is allowed (image pull, start, readiness). The wait
        budget is the number of batches left times this, unless O(wait_timeout) is given.
    type: float
    default: 60
  wait_timeout:
    description:
      - Seconds to wait for the rollout, overriding the budget derived from the DaemonSet's size and
        strategy. Not given or V(0) - derived (C(ceil(pods left / maxUnavailable)) x O(rollout_batch_seconds)).
      - When the budget runs out the module fails with where the rollout stands (updated, available,
        desired, elapsed, ETA). Kubernetes continues the rollout; a rerun resumes waiting with a budget
        for the pods left and restarts nothing (the pod template already carries the configuration hash).
    type: int
  wait_timeout_fails:
    description:
      - V(false) - when the budget runs out return (C(complete) false and C(message) set in RV(rollout))
        instead of failing; for a task loop that waits in slices and prints progress between them (the
        C(master) role does this).
    type: bool
    default: true
  wait_sleep:
    description: Seconds between rollout polls.
    type: float
    default: 2
  progress_every:
    description: A progress line is recorded when the figures change and at least every this many seconds.
    type: float
    default: 30
notes:
  - Changing the datastore of running calico-node pods is disruptive only if the new etcd lacks the data;
    run the migration (M(kubescale.calico.calico_datastore_migrate)) first.
seealso:
  - module: kubescale.calico.calico_datastore_migrate
"""

EXAMPLES = r"""
- name: Point Calico at the dedicated etcd
  kubescale.calico.calico_k8s_datastore:
    kubeconfig: /etc/kubernetes/admin.conf
    etcd_endpoints:
      - https://10.0.0.11:2389
      - https://10.0.0.12:2389
      - https://10.0.0.13:2389
    etcd_ca_cert: /root/calico-etcd-pki/ca.crt
    etcd_client_cert: /root/calico-etcd-pki/calico.crt
    etcd_client_key: /root/calico-etcd-pki/calico.key
  delegate_to: localhost
  run_once: true

- name: On a 1,000-node cluster - 100 pods at a time, 2 minutes per batch (budget 10 x 120 s)
  kubescale.calico.calico_k8s_datastore:
    kubeconfig: /etc/kubernetes/admin.conf
    etcd_endpoints: [https://10.0.0.11:2389]
    max_unavailable: 10%
    rollout_batch_seconds: 120
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
actions:
  description: What was done (or would be, in check mode), in plain sentences.
  returned: always
  type: list
  elements: str
  sample: ["set etcd_ca, etcd_cert, etcd_endpoints, etcd_key in ConfigMap kube-system/calico-config"]
objects:
  description: Per object (configmap, secret, daemonset) its name and whether it changed.
  returned: always
  type: dict
rollout:
  description:
    - The DaemonSet's rollout figures after waiting (generation, observed_generation, desired, updated,
      available, ready, complete), the strategy's batch size (max_unavailable, resolved to pods),
      batches_left, batch_seconds, the wait budget in seconds (budget; budget_batches when derived),
      elapsed and eta in seconds, and message when the budget ran out (O(wait_timeout_fails) false).
  returned: when the DaemonSet is restarted or checked and not in check mode
  type: dict
  sample: {"desired": 600, "updated": 600, "available": 600, "complete": true, "max_unavailable": 60,
           "budget": 600.0, "budget_batches": 10, "elapsed": 41.5, "eta": 0.0}
progress:
  description: Progress lines recorded while waiting (updated/available/desired, elapsed, ETA).
  returned: when waited
  type: list
  elements: str
  sample: ["DaemonSet kube-system/calico-node: updated 120/600, available 540/600, elapsed 8s, ETA 32s"]
config_hash:
  description: Hash of the desired configuration, stored in the pod template annotation.
  returned: always
  type: str
"""

import copy

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.kubescale.calico.plugins.module_utils.calico.k8s_datastore import (
    HAS_KUBERNETES,
    K8S_CONNECTION_ARGSPEC,
    KUBERNETES_IMPORT_ERROR,
    Desired,
    K8sDatastoreError,
    KubeObjects,
    Rollout,
    RolloutTimeout,
    api_client,
    apply,
    read_secret_files,
    validate_endpoints,
)
from ansible_collections.kubescale.calico.plugins.module_utils.calico.rollout import (
    RolloutError,
    parse_max_unavailable,
)


def main() -> None:
    spec = copy.deepcopy(K8S_CONNECTION_ARGSPEC)
    spec.update(
        namespace=dict(type="str", default="kube-system"),
        configmap_name=dict(type="str", default="calico-config"),
        secret_name=dict(type="str", default="calico-etcd-secrets"),
        daemonset_name=dict(type="str", default="calico-node"),
        etcd_endpoints=dict(type="list", elements="str", required=True),
        etcd_ca_cert=dict(type="path"),
        etcd_client_cert=dict(type="path"),
        etcd_client_key=dict(type="path", no_log=False),
        secrets_mount_path=dict(type="str", default="/calico-secrets", no_log=False),
        restart=dict(type="bool", default=True),
        max_unavailable=dict(type="str"),
        wait=dict(type="bool", default=True),
        rollout_batch_seconds=dict(type="float", default=60.0),
        wait_timeout=dict(type="int"),
        wait_timeout_fails=dict(type="bool", default=True),
        wait_sleep=dict(type="float", default=2.0),
        progress_every=dict(type="float", default=30.0),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True,
                           required_together=[["etcd_client_cert", "etcd_client_key"]])
    if not HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=str(KUBERNETES_IMPORT_ERROR))
    p = module.params
    try:
        want = Desired(
            namespace=p["namespace"], configmap=p["configmap_name"], secret=p["secret_name"],
            daemonset=p["daemonset_name"], endpoints=validate_endpoints(p["etcd_endpoints"]),
            mount_path=p["secrets_mount_path"],
            secret_data=read_secret_files({"etcd-ca": p["etcd_ca_cert"], "etcd-cert": p["etcd_client_cert"],
                                           "etcd-key": p["etcd_client_key"]}),
        )
        roll = rollout_options(p)
        kube = KubeObjects(api_client(p), timeout=p["request_timeout"])
        out = apply(kube, want, check=module.check_mode, roll=roll)
    except RolloutTimeout as exc:
        module.fail_json(msg=str(exc), rollout=exc.state, progress=exc.progress)
    except (K8sDatastoreError, RolloutError) as exc:
        module.fail_json(msg=str(exc))
    for warning in out.warnings:
        module.warn(warning)
    result = dict(changed=out.changed, actions=out.actions, objects=out.objects, config_hash=want.config_hash())
    if out.rollout:
        result.update(rollout=out.rollout, progress=out.progress)
    if module._diff:
        result["diff"] = out.diff
    module.exit_json(**result)


def rollout_options(p: dict) -> Rollout:
    """The rollout options, checked (a clear one-line error before any request)."""
    for key in ("rollout_batch_seconds", "wait_sleep", "progress_every"):
        if p[key] <= 0:
            raise RolloutError(f"{key}: must be > 0, got {p[key]:g}")
    if p["wait_timeout"] is not None and p["wait_timeout"] < 0:
        raise RolloutError(f"wait_timeout: must be >= 0 (0: derived from the DaemonSet), got {p['wait_timeout']}")
    return Rollout(restart=p["restart"], wait=p["wait"], max_unavailable=parse_max_unavailable(p["max_unavailable"]),
                   batch_seconds=p["rollout_batch_seconds"], timeout=p["wait_timeout"] or None, sleep=p["wait_sleep"],
                   every=p["progress_every"], timeout_fails=p["wait_timeout_fails"])


if __name__ == "__main__":
    main()
