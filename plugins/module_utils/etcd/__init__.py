"""The etcd layer: the one etcd v3 client (endpoints, TLS, auth, paged reads, guarded transactions,
leases, locks, members, snapshots), the shared module connection options, the etcd v2 HTTP reader,
the generic v2 → v3 copy, cluster operations and RBAC. Nothing here knows about Calico."""
