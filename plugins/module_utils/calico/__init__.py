"""The Calico v3 datastore: kinds and key paths, field rules, the selector grammar, per-kind
validation, the store that diffs and writes objects with compare-and-swap, what the Calico modules
share, and the Kubernetes-datastore (CRD) variant. Built on the etcd layer."""
