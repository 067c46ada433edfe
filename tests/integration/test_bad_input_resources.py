"""Bad input through the modules, as a user gives it: refused with one clear line, nothing written.

Every case is a module call made by ansible-playbook (Ansible's argument handling, module packaging,
the module's own process) against a real etcd 3.4 that holds a few objects (two IP pools, a Node,
BGPConfiguration ``default``). All cases run as the tasks of one playbook (one ansible start); the
etcd revision is read before and after the whole batch, and since revisions only grow, an unchanged
revision shows that no case wrote anything. Each case also asserts failed, not changed, a one-line
message matching its regex, and no Python exception text.

Categories (docs/validation.md has the table): unknown fields, wrong JSON types, enumerations, IP
pool overlap, AS numbers (0, non-ASCII digits, out of range), names, selectors, IPs, CIDRs, cluster
IDs, malformed topology plans, options Ansible itself refuses.
"""

from __future__ import annotations

import copy
import re

import pytest
from playbook_run import run_modules

from ansible_collections.kubescale.calico.plugins.module_utils.calico.fields import ValidationError
from ansible_collections.kubescale.calico.plugins.module_utils.calico.resources import validate
from ansible_collections.kubescale.calico.plugins.module_utils.calico.store import CalicoStore
from ansible_collections.kubescale.calico.plugins.module_utils.topology.plan_shape import validate_plan_shape
from ansible_collections.kubescale.calico.plugins.module_utils.topology.planner import plan_topology

V3 = "projectcalico.org/v3"
MODULES = ("calico_resource", "bgp_peer", "ippool", "bgp_configuration", "calico_node", "bgp_topology",
           "calico_resource_info")


def obj(kind: str, name: str, spec=None, **meta) -> dict:
    return {"kind": kind, "apiVersion": V3, "metadata": {"name": name, **meta}, "spec": {} if spec is None else spec}


def resource(kind: str, name: str, spec=None, **meta) -> dict:
    """calico_resource arguments for one object."""
    return {"definition": obj(kind, name, spec, **meta)}


def felix(**spec) -> dict:
    return resource("FelixConfiguration", "default", spec)


def peer(**spec) -> dict:
    return resource("BGPPeer", "peer-bad", {"peerIP": "10.0.0.9", "asNumber": 64512, **spec})


def gnp(**spec) -> dict:
    return resource("GlobalNetworkPolicy", "gnp-bad", {"selector": "all()", **spec})


def rule(**fields) -> dict:
    return gnp(ingress=[{"action": "Allow", **fields}])


def pool(name: str = "pool-bad", **spec) -> dict:
    return resource("IPPool", name, {"cidr": "10.250.0.0/16", **spec})


def wep(**spec) -> dict:
    base = {"node": "node-1", "orchestrator": "k8s", "pod": "web-1", "endpoint": "eth0"}
    return resource("WorkloadEndpoint", "node--1-k8s-web--1-eth0", {**base, **spec}, namespace="default")


def small_plan() -> dict:
    """A real route-reflector plan from the planner (20 workers, 3 management hosts)."""
    groups = {"master": ["master-1"], "management": ["mgmt-1", "mgmt-2", "mgmt-3"], "proxy": ["proxy-1"],
              "worker": [f"worker-{i}" for i in range(1, 21)]}
    hostvars = {host: {"calico_bgp_ip": f"10.1.0.{i + 1}", "calico_rack": f"rack{i % 3 + 1}"}
                for i, host in enumerate(h for hosts in groups.values() for h in hosts)}
    return plan_topology(groups, hostvars, {"mesh_max_nodes": 10})


PLAN = small_plan()


def plan_with(change) -> dict:
    """bgp_topology arguments: the good plan with one thing broken by ``change(plan)``."""
    plan = copy.deepcopy(PLAN)
    change(plan)
    return {"plan": plan}


def set_path(*path, value):
    """A change that sets plan[path...] = value."""
    def change(plan):
        target = plan
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


def drop_path(*path):
    def change(plan):
        target = plan
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
    return change


ARABIC_64512 = "٦٤٥١٢"  # Arabic-Indic digits: \d and int() take them, Calico does not
FULLWIDTH_64512 = "６４５１２"
NODE0 = ("resources", "nodes", 0)
PEER0 = ("resources", "bgppeers", 0)

# (id, module, arguments, regex the one-line message must match)
CASES = [
    # -- calico_resource: unknown fields, anywhere in the object --------------------------------
    ("felix-unknown-knob", "calico_resource", felix(bogusKnob=1),
     r"^resources\[0\]: FelixConfiguration\.spec\.bogusKnob: unknown field$"),
    ("peer-password-unknown", "calico_resource", peer(password={"secretKeyRef": {"name": "s", "ke": "k"}}),
     r"BGPPeer\.spec\.password\.secretKeyRef\.ke: unknown field"),
    ("node-orchref-unknown", "calico_resource",
     resource("Node", "node-x", {"orchRefs": [{"orchestrator": "k8s", "node": "x"}]}),
     r"Node\.spec\.orchRefs\[0\]\.node: unknown field"),
    ("np-gnp-only-field", "calico_resource",
     resource("NetworkPolicy", "np-bad", {"selector": "all()", "doNotTrack": True}, namespace="default"),
     r"NetworkPolicy\.spec\.doNotTrack: unknown field"),
    ("metadata-unknown-field", "calico_resource", {"definition": {**obj("BGPPeer", "p1", {"peerIP": "10.0.0.9"}),
                                                                  "metadata": {"name": "p1", "labelz": {}}}},
     r"BGPPeer\.metadata\.labelz: unknown field"),
    ("status-on-peer", "calico_resource", {"definition": {**obj("BGPPeer", "p1", {"peerIP": "10.0.0.9"}),
                                                          "status": {"up": True}}},
     r"BGPPeer\.status: unknown field"),
    # -- calico_resource: wrong JSON types --------------------------------------------------------
    ("peer-keepnexthop-string", "calico_resource", peer(keepOriginalNextHop="yes"),
     r"BGPPeer\.spec\.keepOriginalNextHop: must be a boolean, got 'yes'"),
    ("felix-duration-int", "calico_resource", felix(reportingInterval=30),
     r"FelixConfiguration\.spec\.reportingInterval: must be a duration such as '90s'.*got 30"),
    ("felix-port-string", "calico_resource", felix(healthPort="9099"),
     r"FelixConfiguration\.spec\.healthPort: must be an integer, got '9099'"),
    ("felix-failsafe-port-string", "calico_resource",
     felix(failsafeInboundHostPorts=[{"protocol": "TCP", "port": "22"}]),
     r"FelixConfiguration\.spec\.failsafeInboundHostPorts\[0\]\.port: must be an integer, got '22'"),
    ("felix-logfilters-list", "calico_resource", felix(bpfLogFilters=["all"]),
     r"FelixConfiguration\.spec\.bpfLogFilters: must be a mapping, got \['all'\]"),
    ("clusterinfo-ready-string", "calico_resource",
     resource("ClusterInformation", "default", {"datastoreReady": "true"}),
     r"ClusterInformation\.spec\.datastoreReady: must be a boolean, got 'true'"),
    ("peer-localas-bool", "calico_resource", peer(localASNumber=True),
     r"BGPPeer\.spec\.localASNumber: must be an integer or a string, got True"),
    ("node-status-podcidrs-string", "calico_resource",
     {"definition": {**obj("Node", "node-x", {"bgp": {"ipv4Address": "10.0.0.7"}}),
                     "status": {"podCIDRs": "10.0.0.0/24"}}},
     r"Node\.status\.podCIDRs: must be a list, got '10\.0\.0\.0/24'"),
    ("hep-port-string", "calico_resource",
     resource("HostEndpoint", "hep-1", {"node": "node-1", "interfaceName": "eth0",
                                        "ports": [{"name": "http", "protocol": "TCP", "port": "80"}]}),
     r"HostEndpoint\.spec\.ports\[0\]\.port: must be an integer, got '80'"),
    ("wep-qos-string", "calico_resource", wep(qosControls={"ingressBandwidth": "1M"}),
     r"WorkloadEndpoint\.spec\.qosControls\.ingressBandwidth: must be an integer, got '1M'"),
    ("gnp-order-string", "calico_resource", gnp(order="10"),
     r"GlobalNetworkPolicy\.spec\.order: must be a number, got '10'"),
    ("rule-nets-string", "calico_resource", rule(source={"nets": "10.0.0.0/8"}),
     r"GlobalNetworkPolicy\.spec\.ingress\[0\]\.source\.nets: must be a list, got '10\.0\.0\.0/8'"),
    ("profile-labels-int", "calico_resource", resource("Profile", "prof-1", {"labelsToApply": {"a": 1}}),
     r"Profile\.spec\.labelsToApply\.a: must be a string, got 1"),
    # -- calico_resource: enumerations ------------------------------------------------------------
    ("felix-iptables-backend", "calico_resource", felix(iptablesBackend="nft"),
     r"FelixConfiguration\.spec\.iptablesBackend: 'nft' is not one of Legacy, NFT, Auto"),
    ("felix-loglevel", "calico_resource", felix(logSeverityScreen="verbose"),
     r"FelixConfiguration\.spec\.logSeverityScreen: 'verbose' is not one of Trace, Debug, Info, Warning, Error, Fatal"),
    ("ippool-allowed-uses", "calico_resource", pool(allowedUses=["Workload", "Pods"]),
     r"IPPool\.spec\.allowedUses\[1\]: 'Pods' is not one of Workload, Tunnel, LoadBalancer"),
    ("peer-nexthop-mode", "calico_resource", peer(nextHopMode="keep"),
     r"BGPPeer\.spec\.nextHopMode: 'keep' is not one of Auto, Self, Keep"),
    ("node-address-type", "calico_resource",
     resource("Node", "node-x", {"addresses": [{"address": "10.0.0.7/32", "type": "Public"}]}),
     r"Node\.spec\.addresses\[0\]\.type: 'Public' is not one of CalicoNodeIP, InternalIP, ExternalIP"),
    ("gnp-rule-action", "calico_resource", rule(action="allow"),
     r"GlobalNetworkPolicy\.spec\.ingress\[0\]\.action: 'allow' is not one of Allow, Deny, Log, Pass"),
    # -- calico_resource: values, names, overlap, the definition itself ---------------------------
    ("resource-pool-inside-stored", "calico_resource", pool("pool-sub", cidr="10.244.128.0/17"),
     r"IPPool\(pool-sub\) CIDR 10\.244\.128\.0/17 overlaps with IPPool\(existing-v4\) CIDR 10\.244\.0\.0/16"),
    ("resource-pools-overlap-in-call", "calico_resource",
     {"definition": [obj("IPPool", "pool-a", {"cidr": "10.250.0.0/16"}),
                     obj("IPPool", "pool-b", {"cidr": "10.250.7.0/24"})]},
     r"resources\[1\]: IPPool\(pool-b\) CIDR 10\.250\.7\.0/24 overlaps with IPPool\(pool-a\) CIDR 10\.250\.0\.0/16 "
     r"\(resources\[0\]\)"),
    ("resource-peer-as0", "calico_resource", peer(asNumber=0),
     r"BGPPeer\.spec\.asNumber: AS number 0 is reserved \(RFC 7607\)"),
    ("resource-node-as-arabic", "calico_resource",
     resource("Node", "node-x", {"bgp": {"ipv4Address": "10.0.0.7", "asNumber": ARABIC_64512}}),
     r"Node\.spec\.bgp\.asNumber: '٦٤٥١٢' is not an AS number"),
    ("unsupported-kind", "calico_resource", resource("Pod", "p1"), r"kind: 'Pod' is not a supported Calico kind"),
    ("definition-string", "calico_resource", {"definition": "hello"}, r"definition: give one resource"),
    ("resource-src-and-definition", "calico_resource", {**felix(), "src": "/tmp/x.yaml"},
     r"parameters are mutually exclusive: definition\|src"),
    # -- bgp_peer ---------------------------------------------------------------------------------
    ("peer-as0", "bgp_peer", {"name": "p1", "peer_ip": "10.0.0.9", "as_number": 0},
     r"^resources\[0\]: BGPPeer\.spec\.asNumber: AS number 0 is reserved \(RFC 7607\)"),
    ("peer-as0-asdot", "bgp_peer", {"name": "p1", "peer_ip": "10.0.0.9", "as_number": "0.0"},
     r"AS number 0 is reserved"),
    ("peer-as-arabic", "bgp_peer", {"name": "p1", "peer_ip": "10.0.0.9", "as_number": ARABIC_64512},
     r"BGPPeer\.spec\.asNumber: '٦٤٥١٢' is not an AS number .*ASCII digits"),
    ("peer-as-fullwidth", "bgp_peer", {"name": "p1", "peer_ip": "10.0.0.9", "as_number": FULLWIDTH_64512},
     r"BGPPeer\.spec\.asNumber: '６４５１２' is not an AS number"),
    ("peer-as-too-big", "bgp_peer", {"name": "p1", "peer_ip": "10.0.0.9", "as_number": 4294967296},
     r"BGPPeer\.spec\.asNumber: 4294967296 is outside the AS number range 1–4294967295"),
    ("peer-asdot-range", "bgp_peer", {"name": "p1", "peer_ip": "10.0.0.9", "as_number": "65536.1"},
     r"asdot '65536\.1' needs both parts in 0–65535"),
    ("peer-as-text", "bgp_peer", {"name": "p1", "peer_ip": "10.0.0.9", "as_number": "AS65000"},
     r"BGPPeer\.spec\.asNumber: 'AS65000' is not an AS number"),
    ("peer-ip-octet", "bgp_peer", {"name": "p1", "peer_ip": "10.0.0.300", "as_number": 64512},
     r"BGPPeer\.spec\.peerIP: '10\.0\.0\.300' is not an IPv4 or IPv6 address"),
    ("peer-ip-port-0", "bgp_peer", {"name": "p1", "peer_ip": "10.0.0.9:0", "as_number": 64512},
     r"BGPPeer\.spec\.peerIP: port 0 is outside 1–65535"),
    ("peer-ip-arabic", "bgp_peer", {"name": "p1", "peer_ip": "١٠.0.0.9", "as_number": 64512},
     r"BGPPeer\.spec\.peerIP: '١٠\.0\.0\.9' is not an IPv4 or IPv6 address"),
    ("peer-name", "bgp_peer", {"name": "Peer_1", "peer_ip": "10.0.0.9", "as_number": 64512},
     r"BGPPeer\.metadata\.name: 'Peer_1' is not a DNS-1123 subdomain"),
    ("peer-selector-syntax", "bgp_peer", {"name": "p1", "peer_selector": "has(rr"},
     r"BGPPeer\.spec\.peerSelector: selector"),
    ("peer-ip-and-selector", "bgp_peer", {"name": "p1", "peer_ip": "10.0.0.9", "peer_selector": "has(rr)"},
     r"parameters are mutually exclusive: peer_ip\|peer_selector"),
    ("peer-selector-with-as", "bgp_peer", {"name": "p1", "peer_selector": "has(rr)", "as_number": 65000},
     r"BGPPeer\.spec\.asNumber: must be unset when peerSelector is set"),
    # -- ippool -----------------------------------------------------------------------------------
    ("pool-inside-stored", "ippool", {"name": "pool-sub", "cidr": "10.244.128.0/17"},
     r"^resources\[0\]: IPPool\(pool-sub\) CIDR 10\.244\.128\.0/17 overlaps with "
     r"IPPool\(existing-v4\) CIDR 10\.244\.0\.0/16 "
     r"\(stored\)$"),
    ("pool-same-cidr", "ippool", {"name": "pool-twin", "cidr": "10.244.0.0/16"},
     r"IPPool\(pool-twin\) CIDR 10\.244\.0\.0/16 overlaps with IPPool\(existing-v4\)"),
    ("pool-supernet", "ippool", {"name": "pool-big", "cidr": "10.0.0.0/8", "disabled": True},
     r"IPPool\(pool-big\) CIDR 10\.0\.0\.0/8 overlaps with IPPool\(existing-v4\)"),
    ("pool-v6-inside-stored", "ippool", {"name": "pool-v6", "cidr": "fd00:1::/64"},
     r"IPPool\(pool-v6\) CIDR fd00:1::/64 overlaps with IPPool\(existing-v6\) CIDR fd00:1::/48"),
    ("pool-host-bits", "ippool", {"name": "p1", "cidr": "10.251.0.1/16"},
     r"IPPool\.spec\.cidr: '10\.251\.0\.1/16': host bits are set"),
    ("pool-prefix-arabic", "ippool", {"name": "p1", "cidr": "10.251.0.0/١٦"},
     r"IPPool\.spec\.cidr: '10\.251\.0\.0/١٦': not a CIDR"),
    ("pool-link-local", "ippool", {"name": "p1", "cidr": "169.254.0.0/16"},
     r"IPPool\.spec\.cidr: 169\.254\.0\.0/16 overlaps the link-local"),
    ("pool-block-size-range", "ippool", {"name": "p1", "cidr": "10.251.0.0/16", "block_size": 19},
     r"IPPool\.spec\.blockSize: 19 must be 20–32 for an IPv4 pool"),
    ("pool-ipip-mode-case", "ippool", {"name": "p1", "cidr": "10.251.0.0/16", "ipip_mode": "always"},
     r"value of ipip_mode must be one of: Never, Always, CrossSubnet, got: always"),
    ("pool-ipip-v6", "ippool", {"name": "p1", "cidr": "fd00:9::/48", "ipip_mode": "Always"},
     r"IPPool\.spec\.ipipMode: IPIP is not supported on an IPv6 pool"),
    ("pool-cidr-change", "ippool", {"name": "existing-v4", "cidr": "10.246.0.0/16"},
     r"IPPool\.spec\.cidr: is immutable \('10\.244\.0\.0/16' is stored, '10\.246\.0\.0/16' was asked for\)"),
    ("pool-no-cidr", "ippool", {"name": "p1"}, r"IPPool\.spec\.cidr: is required"),
    # -- bgp_configuration ------------------------------------------------------------------------
    ("bgpconfig-as0", "bgp_configuration", {"as_number": 0},
     r"BGPConfiguration\.spec\.asNumber: AS number 0 is reserved"),
    ("bgpconfig-as-arabic", "bgp_configuration", {"as_number": ARABIC_64512},
     r"BGPConfiguration\.spec\.asNumber: '٦٤٥١٢' is not an AS number"),
    ("bgpconfig-loglevel", "bgp_configuration", {"log_severity_screen": "Verbose"},
     r"value of log_severity_screen must be one of: Trace, Debug, Info, Warning, Error, Fatal, got: Verbose"),
    ("bgpconfig-port-0", "bgp_configuration", {"listen_port": 0},
     r"BGPConfiguration\.spec\.listenPort: 0 must be a port 1–65535"),
    ("bgpconfig-node-as", "bgp_configuration", {"name": "node.node-1", "as_number": 64512},
     r"BGPConfiguration\.spec\.asNumber: may only be set on the BGPConfiguration named 'default'"),
    ("bgpconfig-cluster-ips-host-bits", "bgp_configuration", {"service_cluster_ips": ["10.96.0.1/12"]},
     r"BGPConfiguration\.spec\.serviceClusterIPs\[0\]\.cidr: '10\.96\.0\.1/12': host bits are set"),
    # -- calico_node ------------------------------------------------------------------------------
    ("node-as0", "calico_node", {"name": "node-1", "as_number": 0},
     r"Node\.spec\.bgp\.asNumber: AS number 0 is reserved"),
    ("node-as-fullwidth", "calico_node", {"name": "node-1", "as_number": "６４５１２"},
     r"Node\.spec\.bgp\.asNumber: '６４５１２' is not"),
    ("node-cluster-id-text", "calico_node", {"name": "node-1", "route_reflector_cluster_id": "rack-1"},
     r"Node\.spec\.bgp\.routeReflectorClusterID: 'rack-1' is not a cluster ID"),
    ("node-cluster-id-arabic", "calico_node", {"name": "node-1", "route_reflector_cluster_id": "٢٢٤.0.0.1"},
     r"Node\.spec\.bgp\.routeReflectorClusterID: '٢٢٤\.0\.0\.1' is not a cluster ID"),
    ("node-ipv4-octet", "calico_node", {"name": "node-1", "ipv4_address": "10.0.0.300"},
     r"Node\.spec\.bgp\.ipv4Address: '10\.0\.0\.300' is not an IPv4 address or address/prefix"),
    ("node-ipv6-given-v4", "calico_node", {"name": "node-1", "ipv6_address": "10.0.0.1"},
     r"Node\.spec\.bgp\.ipv6Address: '10\.0\.0\.1' is not an IPv6 address"),
    ("node-ipv4-arabic", "calico_node", {"name": "node-1", "ipv4_address": "١٠.0.0.1"},
     r"Node\.spec\.bgp\.ipv4Address: '١٠\.0\.0\.1' is not an IPv4 address"),
    ("node-missing-no-create", "calico_node", {"name": "ghost-node", "ipv4_address": "10.0.0.5", "create": False},
     r"Node ghost-node: does not exist and create is false"),
    # -- calico_resource_info ---------------------------------------------------------------------
    ("info-kind", "calico_resource_info", {"kind": "Pod"},
     r"value of kind must be one of: BGPConfiguration, .*, got: Pod"),
    ("info-name", "calico_resource_info", {"kind": "BGPPeer", "name": "Bad_Name"},
     r"BGPPeer\.metadata\.name: 'Bad_Name' is not a DNS-1123"),
    ("info-selector", "calico_resource_info", {"kind": "Node", "label_selector": "a =="}, r"label_selector: selector"),
    ("info-page-size-0", "calico_resource_info", {"kind": "Node", "page_size": 0},
     r"page_size: 0 must be a positive integer"),
    ("info-namespace-bad", "calico_resource_info", {"kind": "NetworkPolicy", "namespace": "NS/x"},
     r"NetworkPolicy\.metadata\.namespace: 'NS/x' is not a DNS-1123 label"),
    # -- bgp_topology: malformed plans ------------------------------------------------------------
    ("plan-list", "bgp_topology", {"plan": [PLAN["mode"]]},
     r"argument 'plan' is of type .* and we were unable to convert to dict"),
    ("plan-empty", "bgp_topology", {"plan": {}}, r"^plan\.mode: is required$"),
    ("plan-mode", "bgp_topology", plan_with(set_path("mode", value="ring")),
     r"plan\.mode: 'ring' is not one of mesh, route_reflector"),
    ("plan-resources-list", "bgp_topology", plan_with(set_path("resources", value=[])),
     r"plan\.resources: must be a mapping, got \[\]"),
    ("plan-resources-extra", "bgp_topology", plan_with(set_path("resources", "ippools", value=[])),
     r"plan\.resources\.ippools: unknown; a plan holds only bgpconfigurations, nodes, bgppeers"),
    ("plan-nodes-mapping", "bgp_topology", plan_with(set_path("resources", "nodes", value={"node-1": {}})),
     r"plan\.resources\.nodes: must be a list, got \{'node-1': \{\}\}"),
    ("plan-node-string", "bgp_topology", plan_with(set_path(*NODE0, value="worker-1")),
     r"plan\.resources\.nodes\[0\]: must be a mapping, got 'worker-1'"),
    ("plan-node-no-spec", "bgp_topology", plan_with(drop_path(*NODE0, "spec")),
     r"plan\.resources\.nodes\[0\]\.spec: is required"),
    ("plan-node-bgp-list", "bgp_topology", plan_with(set_path(*NODE0, "spec", "bgp", value=["10.1.0.1"])),
     r"plan\.resources\.nodes\[0\]\.spec\.bgp: must be a mapping, got \['10\.1\.0\.1'\]"),
    ("plan-node-no-ipv4", "bgp_topology", plan_with(drop_path(*NODE0, "spec", "bgp", "ipv4Address")),
     r"plan\.resources\.nodes\[0\]\.spec\.bgp\.ipv4Address: is required"),
    ("plan-peer-wrong-kind", "bgp_topology", plan_with(set_path(*PEER0, "kind", value="Node")),
     r"plan\.resources\.bgppeers\[0\]\.kind: must be BGPPeer, got 'Node'"),
    ("plan-reflectors-string", "bgp_topology", plan_with(set_path("reflectors", value="mgmt-1")),
     r"plan\.reflectors: must be a list, got 'mgmt-1'"),
    ("plan-reflector-no-cluster-id", "bgp_topology", plan_with(drop_path("reflectors", 0, "cluster_id")),
     r"plan\.reflectors\[0\]\.cluster_id: is required"),
    ("plan-unmanaged-peer", "bgp_topology",
     plan_with(lambda p: p["resources"]["bgppeers"][0]["metadata"]["labels"].clear()),
     r"plan\.resources\.bgppeers\[0\]\.metadata\.labels: must carry kubescale\.io/managed-by"),
    ("plan-node-cluster-id", "bgp_topology",
     plan_with(lambda p: p["resources"]["nodes"][3]["spec"]["bgp"].update(routeReflectorClusterID="rack-1")),
     r"Node\.spec\.bgp\.routeReflectorClusterID: 'rack-1' is not a cluster ID"),
    ("plan-node-as0", "bgp_topology", plan_with(lambda p: p["resources"]["nodes"][0]["spec"]["bgp"].update(asNumber=0)),
     r"Node\.spec\.bgp\.asNumber: AS number 0 is reserved"),
    ("plan-peer-unknown-field", "bgp_topology",
     plan_with(lambda p: p["resources"]["bgppeers"][0]["spec"].update(keepNextHop=True)),
     r"BGPPeer\.spec\.keepNextHop: unknown field"),
    ("plan-phase", "bgp_topology", {"plan": PLAN, "phase": "later"},
     r"value of phase must be one of: all, prepare, finish, got: later"),
]

# Breadth at the Python level (no ansible start each): more calico_resource definitions, judged by
# resources.validate (the function every write path calls), and more malformed plans for
# validate_plan_shape (what bgp_topology calls first). Same tuple layout as CASES.
MORE_DEFINITIONS = [
    ("ippool-unknown-field", "calico_resource", pool(natOutgoingg=True), r"IPPool\.spec\.natOutgoingg: unknown field"),
    ("felix-routetablerange-unknown", "calico_resource", felix(routeTableRange={"min": 1, "max": 250, "step": 1}),
     r"FelixConfiguration\.spec\.routeTableRange\.step: unknown field"),
    ("node-bgp-unknown", "calico_resource", resource("Node", "node-x", {"bgp": {"ipv4Address": "10.0.0.7", "asn": 1}}),
     r"Node\.spec\.bgp\.asn: unknown field"),
    ("wep-ipnat-unknown", "calico_resource", wep(ipNATs=[{"internalIP": "10.0.0.1", "external": "1.2.3.4"}]),
     r"WorkloadEndpoint\.spec\.ipNATs\[0\]\.external: unknown field"),
    ("rule-unknown-field", "calico_resource", rule(sauce={"nets": []}),
     r"GlobalNetworkPolicy\.spec\.ingress\[0\]\.sauce: unknown field"),
    ("top-level-unknown", "calico_resource",
     {"definition": {**obj("BGPPeer", "p1", {"peerIP": "10.0.0.9"}), "specs": {}}},
     r"BGPPeer: unknown top-level field\(s\) specs"),
    ("felix-duration-words", "calico_resource", felix(reportingInterval="30 seconds"),
     r"FelixConfiguration\.spec\.reportingInterval: must be a duration"),
    ("felix-failsafe-mapping", "calico_resource", felix(failsafeInboundHostPorts={"tcp": 22}),
     r"FelixConfiguration\.spec\.failsafeInboundHostPorts: must be a list, got \{'tcp': 22\}"),
    ("felix-ipv6support-int", "calico_resource", felix(ipv6Support=1),
     r"FelixConfiguration\.spec\.ipv6Support: must be a boolean, got 1"),
    ("clusterinfo-version-number", "calico_resource",
     resource("ClusterInformation", "default", {"calicoVersion": 3.31}),
     r"ClusterInformation\.spec\.calicoVersion: must be a string, got 3\.31"),
    ("ippool-bgpexport-string", "calico_resource", pool(disableBGPExport="no"),
     r"IPPool\.spec\.disableBGPExport: must be a boolean, got 'no'"),
    ("ippool-blocksize-string", "calico_resource", pool(blockSize="26"),
     r"IPPool\.spec\.blockSize: must be an integer, got '26'"),
    ("bgpconfig-community-value-int", "calico_resource",
     resource("BGPConfiguration", "default", {"communities": [{"name": "c1", "value": 100}]}),
     r"BGPConfiguration\.spec\.communities\[0\]\.value: must be a string, got 100"),
    ("bgpconfig-prefixadv-string", "calico_resource",
     resource("BGPConfiguration", "default", {"prefixAdvertisements": "x"}),
     r"BGPConfiguration\.spec\.prefixAdvertisements: must be a list, got 'x'"),
    ("bgpconfig-restart-int", "calico_resource",
     resource("BGPConfiguration", "default", {"nodeMeshMaxRestartTime": 120}),
     r"BGPConfiguration\.spec\.nodeMeshMaxRestartTime: must be a duration"),
    ("peer-allowed-as-string", "calico_resource", peer(numAllowedLocalASNumbers="1"),
     r"BGPPeer\.spec\.numAllowedLocalASNumbers: must be an integer, got '1'"),
    ("peer-filters-string", "calico_resource", peer(filters="f1"), r"BGPPeer\.spec\.filters: must be a list, got 'f1'"),
    ("metadata-finalizers-string", "calico_resource",
     {"definition": {**obj("BGPPeer", "p1", {"peerIP": "10.0.0.9"}), "metadata": {"name": "p1", "finalizers": "x"}}},
     r"BGPPeer\.metadata\.finalizers: must be a list, got 'x'"),
    ("hep-expectedips-string", "calico_resource",
     resource("HostEndpoint", "hep-1", {"node": "node-1", "expectedIPs": "10.0.0.1"}),
     r"HostEndpoint\.spec\.expectedIPs: must be a list, got '10\.0\.0\.1'"),
    ("hep-interface-int", "calico_resource", resource("HostEndpoint", "hep-1", {"node": "node-1", "interfaceName": 5}),
     r"HostEndpoint\.spec\.interfaceName: must be a string, got 5"),
    ("gnp-donottrack-string", "calico_resource", gnp(doNotTrack="true"),
     r"GlobalNetworkPolicy\.spec\.doNotTrack: must be a boolean, got 'true'"),
    ("rule-icmp-type-string", "calico_resource", rule(protocol="ICMP", icmp={"type": "8"}),
     r"GlobalNetworkPolicy\.spec\.ingress\[0\]\.icmp\.type: must be an integer, got '8'"),
    ("rule-ports-string", "calico_resource",
     resource("NetworkPolicy", "np-bad",
              {"selector": "all()", "ingress": [{"action": "Allow", "destination": {"ports": "80"}}]},
              namespace="default"),
     r"NetworkPolicy\.spec\.ingress\[0\]\.destination\.ports: must be a list, got '80'"),
    ("rule-metadata-annotations-list", "calico_resource", rule(metadata={"annotations": ["a"]}),
     r"GlobalNetworkPolicy\.spec\.ingress\[0\]\.metadata\.annotations: must be a mapping, got \['a'\]"),
    ("profile-egress-mapping", "calico_resource", resource("Profile", "prof-1", {"egress": {"action": "Allow"}}),
     r"Profile\.spec\.egress: must be a list, got \{'action': 'Allow'\}"),
    ("spec-list", "calico_resource", resource("BGPPeer", "p1", ["peerIP", "10.0.0.9"]),
     r"BGPPeer\.spec: must be a mapping"),
    ("felix-endpoint-to-host", "calico_resource", felix(defaultEndpointToHostAction="Allow"),
     r"FelixConfiguration\.spec\.defaultEndpointToHostAction: 'Allow' is not one of Drop, Accept, Return"),
    ("ippool-assignment-mode", "calico_resource", pool(assignmentMode="auto"),
     r"IPPool\.spec\.assignmentMode: 'auto' is not one of Automatic, Manual"),
    ("ippool-vxlan-mode-bool", "calico_resource", pool(vxlanMode=True),
     r"IPPool\.spec\.vxlanMode: True is not one of Never"),
    ("bgpconfig-bindmode", "calico_resource", resource("BGPConfiguration", "default", {"bindMode": "Any"}),
     r"BGPConfiguration\.spec\.bindMode: 'Any' is not one of None, NodeIP"),
    ("bgpconfig-lb-aggregation", "calico_resource",
     resource("BGPConfiguration", "default", {"serviceLoadBalancerAggregation": "On"}),
     r"BGPConfiguration\.spec\.serviceLoadBalancerAggregation: 'On' is not one of Enabled, Disabled"),
    ("peer-reverse-peering", "calico_resource", peer(reversePeering="auto"),
     r"BGPPeer\.spec\.reversePeering: 'auto' is not one of Auto, Manual"),
    ("gnp-types", "calico_resource", gnp(types=["ingress"]),
     r"GlobalNetworkPolicy\.spec\.types\[0\]: 'ingress' is not one of Ingress, Egress"),
    ("gnp-performance-hint", "calico_resource", gnp(performanceHints=["Always"]),
     r"GlobalNetworkPolicy\.spec\.performanceHints\[0\]: 'Always' is not one of AssumeNeededOnEveryNode"),
    ("resource-pool-v1-ipip", "calico_resource", pool(ipip={"enabled": True}),
     r"IPPool\.spec\.ipip: is a deprecated v1 field"),
    ("api-version-v2", "calico_resource", {"definition": {**obj("BGPPeer", "p1", {"peerIP": "10.0.0.9"}),
                                                          "apiVersion": "projectcalico.org/v2"}},
     r"BGPPeer\.apiVersion: 'projectcalico\.org/v2' must be projectcalico\.org/v3"),
    ("resource-name-underscore", "calico_resource", resource("BGPPeer", "Bad_Name", {"peerIP": "10.0.0.9"}),
     r"BGPPeer\.metadata\.name: 'Bad_Name' is not a DNS-1123 subdomain"),
    ("gnp-bad-selector", "calico_resource", gnp(selector="a =="), r"GlobalNetworkPolicy\.spec\.selector: selector"),
    ("rule-bad-cidr", "calico_resource", rule(source={"nets": ["10.0.0.0/33"]}),
     r"GlobalNetworkPolicy\.spec\.ingress\[0\]\.source\.nets\[0\]: '10\.0\.0\.0/33'"),
    ("clusterinfo-name", "calico_resource", resource("ClusterInformation", "other"),
     r"ClusterInformation\.metadata\.name: the only allowed name is 'default'"),
]

MORE_PLANS = [
    ("plan-reflector-kind", "bgp_topology", plan_with(set_path("reflector_kind", value="sideways")),
     r"plan\.reflector_kind: 'sideways' is not one of in_cluster, external"),
    ("plan-resources-missing", "bgp_topology", plan_with(drop_path("resources")), r"plan\.resources: is required"),
    ("plan-node-name-int", "bgp_topology", plan_with(set_path(*NODE0, "metadata", "name", value=5)),
     r"plan\.resources\.nodes\[0\]\.metadata\.name: must be a non-empty string, got 5"),
    ("plan-node-labels-list", "bgp_topology", plan_with(set_path(*NODE0, "metadata", "labels", value=["a"])),
     r"plan\.resources\.nodes\[0\]\.metadata\.labels: must be a mapping, got \['a'\]"),
    ("plan-peer-no-metadata", "bgp_topology", plan_with(drop_path(*PEER0, "metadata")),
     r"plan\.resources\.bgppeers\[0\]\.metadata: is required"),
    ("plan-config-no-apiversion", "bgp_topology",
     plan_with(drop_path("resources", "bgpconfigurations", 0, "apiVersion")),
     r"plan\.resources\.bgpconfigurations\[0\]\.apiVersion: is required"),
    ("plan-nodes-summary-mapping", "bgp_topology", plan_with(set_path("nodes", value={})),
     r"plan\.nodes: must be a list, got \{\}"),
]


def seed(client) -> None:
    """What the batch runs against: pools to overlap with, a Node, BGPConfiguration default."""
    CalicoStore(client).apply([
        obj("IPPool", "existing-v4", {"cidr": "10.244.0.0/16"}),
        obj("IPPool", "existing-v6", {"cidr": "fd00:1::/48"}),
        obj("Node", "node-1", {"bgp": {"ipv4Address": "10.0.0.1/24"}}),
        obj("BGPConfiguration", "default", {"nodeToNodeMeshEnabled": True, "asNumber": 64512}),
    ])


@pytest.fixture(scope="module")
def batch(_etcd_single_server):
    """Every case in one playbook against a seeded etcd: results by id, revisions and keyspace around it."""
    server = _etcd_single_server
    server.wipe()
    client = server.client()
    try:
        seed(client)
        before = (server.revision(), {kv.key: kv.value for kv in client.range("/")})
        calls = [(module, {**server.conn_params, **args}) for _unused, module, args, _unused2 in CASES]
        # ~100 module runs: pipelining saves a temp dir and a copy per task; a loaded machine needs the time
        results = run_modules(calls, env={"ANSIBLE_PIPELINING": "True"}, timeout=1800)
        after = (server.revision(), {kv.key: kv.value for kv in client.range("/")})
    finally:
        client.close()
    return {"results": dict(zip([case[0] for case in CASES], results, strict=True)), "before": before, "after": after}


def test_the_cases_are_many_distinct_and_cover_every_module():
    ids = [case[0] for case in CASES + MORE_DEFINITIONS + MORE_PLANS]
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 90
    assert {case[1] for case in CASES} == set(MODULES)


def test_the_batch_wrote_nothing(batch):
    (rev_before, keys_before), (rev_after, keys_after) = batch["before"], batch["after"]
    moved = sorted(key for key in keys_before.keys() | keys_after.keys() if keys_before.get(key) != keys_after.get(key))
    assert rev_after == rev_before and not moved, f"revision {rev_before} -> {rev_after}; keys written: {moved}"


@pytest.mark.parametrize(("case_id", "module", "args", "pattern"), CASES, ids=[case[0] for case in CASES])
def test_bad_input_is_refused_with_one_clear_line(batch, case_id, module, args, pattern):
    result = batch["results"][case_id]
    message = result.get("msg", "")
    assert result.get("failed") is True, f"{module} accepted it: {result}"
    assert result.get("changed") is not True
    assert "\n" not in message.strip() and "Traceback" not in message and "Error(" not in message, message
    assert re.search(pattern, message), f"{message!r} does not match {pattern!r}"
    assert batch["after"][0] == batch["before"][0]


def test_the_values_next_to_the_refused_ones_are_accepted(etcd_single):
    """Controls: the rules refuse exactly the bad side (adjacent pools, AS 1 and 2^32-1, typed Felix knobs)."""
    client = etcd_single.client()
    try:
        seed(client)
    finally:
        client.close()
    conn = etcd_single.conn_params
    results = run_modules([
        ("ippool", {**conn, "name": "adjacent-v4", "cidr": "10.245.0.0/16"}),
        ("ippool", {**conn, "name": "adjacent-v6", "cidr": "fd00:2::/48"}),
        ("bgp_peer", {**conn, "name": "as-one", "peer_ip": "10.0.0.9", "as_number": 1}),
        ("bgp_peer", {**conn, "name": "as-asdot", "peer_ip": "10.0.0.10", "as_number": "0.1"}),
        ("bgp_peer", {**conn, "name": "as-max", "peer_ip": "10.0.0.11", "as_number": "4294967295"}),
        ("calico_node", {**conn, "name": "node-1", "route_reflector_cluster_id": "224.0.0.1", "as_number": "64512"}),
        ("calico_resource", {**conn, **felix(reportingInterval="1m30s", iptablesBackend="NFT", healthPort=9099,
                                             failsafeInboundHostPorts=[{"protocol": "TCP", "port": 22}],
                                             bpfLogFilters={"all": "tcp"}, logSeverityFile="")}),
        ("calico_resource", {**conn, **peer(keepOriginalNextHop=True,
                                            password={"secretKeyRef": {"name": "s", "key": "k"}})}),
        ("bgp_topology", {**conn, "plan": PLAN}),
    ])
    for result in results:
        assert not result.get("failed"), result.get("msg")
        assert result["changed"] is True


def _one_line_error(call, pattern: str) -> None:
    with pytest.raises(ValidationError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message and re.search(pattern, message), f"{message!r} does not match {pattern!r}"


@pytest.mark.parametrize(("case_id", "module", "args", "pattern"), MORE_DEFINITIONS,
                         ids=[case[0] for case in MORE_DEFINITIONS])
def test_more_bad_definitions_are_refused_by_validate(case_id, module, args, pattern):
    _one_line_error(lambda: validate(args["definition"]), pattern)


@pytest.mark.parametrize(("case_id", "module", "args", "pattern"), MORE_PLANS, ids=[case[0] for case in MORE_PLANS])
def test_more_malformed_plans_are_refused_by_the_shape_check(case_id, module, args, pattern):
    _one_line_error(lambda: validate_plan_shape(args["plan"]), pattern)


def test_the_planners_own_plan_has_the_right_shape():
    validate_plan_shape(PLAN)
