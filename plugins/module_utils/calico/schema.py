# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The typed shape of every Calico v3 kind the collection writes or accepts, and a walker for it.

Described field by field from the ``projectcalico.org/v3`` Go types (api/pkg/apis/projectcalico/v3
and libcalico-go/lib/apis/v3 of Calico release-v3.31, plus the fields of v3.0–v3.30 that were
later dropped; docs/validation.md says which). The walker checks shape only: unknown fields, JSON
types and enumerations. Value rules (names, CIDRs, selectors, AS numbers, cross-field rules) stay in
validate.py, which runs after it on an object whose shape is then known to be right.

Notation: a scalar type is one of the constants below; ``Enum(...)`` a fixed set of strings; a
``dict`` an object whose keys are its only fields; ``ListOf(t)`` a list; ``MapOf(t)`` a mapping
of string keys to ``t`` (labels, annotations).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ansible_collections.kubescale.calico.plugins.module_utils.calico.fields import ValidationError

STR, INT, BOOL, NUM = "string", "integer", "boolean", "number"
DURATION = "duration"  # Go's metav1.Duration: a string such as "90s", "1m30s", "250ms"
INT_OR_STR = "integer or string"  # numorstring.Port/Protocol/ASNumber/DSCP (the value is judged later)


@dataclass(frozen=True)
class Enum:
    values: tuple[str, ...]
    empty_ok: bool = False  # a plain Go string with omitempty: "" means unset

    def __init__(self, *values: str, empty_ok: bool = False) -> None:
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "empty_ok", empty_ok)


@dataclass(frozen=True)
class ListOf:
    item: Any


@dataclass(frozen=True)
class MapOf:
    value: Any


def _fields(typ: Any, names: str) -> dict[str, Any]:
    """``names`` (whitespace-separated) all of type ``typ``: keeps the long kinds readable."""
    return dict.fromkeys(names.split(), typ)


# -- shared pieces ------------------------------------------------------------------------------
LOG_LEVEL = Enum("Trace", "Debug", "Info", "Warning", "Error", "Fatal")
LOG_LEVEL_OR_EMPTY = Enum(*LOG_LEVEL.values, empty_ok=True)
ENCAP_MODE = Enum("Never", "Always", "CrossSubnet")
ENABLED = Enum("Enabled", "Disabled")
SECRET_KEY_REF = {"name": STR, "key": STR, "optional": BOOL}
BGP_PASSWORD = {"secretKeyRef": SECRET_KEY_REF}
CIDR_BLOCKS = ListOf({"cidr": STR})

OBJECT_META = {
    **_fields(STR, "name generateName namespace selfLink uid resourceVersion creationTimestamp "
                   "deletionTimestamp clusterName"),
    **_fields(INT, "generation deletionGracePeriodSeconds"),
    "labels": MapOf(STR), "annotations": MapOf(STR), "finalizers": ListOf(STR),
    "ownerReferences": ListOf({**_fields(STR, "apiVersion kind name uid"),
                               **_fields(BOOL, "controller blockOwnerDeletion")}),
    "managedFields": ListOf({**_fields(STR, "manager operation apiVersion time fieldsType subresource"),
                             "fieldsV1": MapOf(None)}),
}

# -- policy rules (policy_common.go) ------------------------------------------------------------
ICMP = {"type": INT, "code": INT}
ENTITY_RULE = {
    **_fields(ListOf(STR), "nets notNets"),
    **_fields(STR, "selector namespaceSelector notSelector"),
    **_fields(ListOf(INT_OR_STR), "ports notPorts"),
    "services": {"name": STR, "namespace": STR},
    "serviceAccounts": {"names": ListOf(STR), "selector": STR},
}
RULE = {
    "action": Enum("Allow", "Deny", "Log", "Pass"),
    "ipVersion": INT,
    **_fields(INT_OR_STR, "protocol notProtocol"),
    **_fields(ICMP, "icmp notICMP"),
    **_fields(ENTITY_RULE, "source destination"),
    "http": {"methods": ListOf(STR), "paths": ListOf({"exact": STR, "prefix": STR})},
    "metadata": {"annotations": MapOf(STR)},
}
POLICY_TYPES = ListOf(Enum("Ingress", "Egress"))
PERFORMANCE_HINTS = ListOf(Enum("AssumeNeededOnEveryNode"))
ENDPOINT_PORT = {"name": STR, "protocol": INT_OR_STR, "port": INT}

# -- kinds ---------------------------------------------------------------------------------------
BGP_CONFIGURATION = {
    "logSeverityScreen": LOG_LEVEL,
    "nodeToNodeMeshEnabled": BOOL,
    "asNumber": INT_OR_STR,
    **_fields(CIDR_BLOCKS, "serviceClusterIPs serviceExternalIPs serviceLoadBalancerIPs"),
    "serviceLoadBalancerAggregation": ENABLED,
    "communities": ListOf({"name": STR, "value": STR}),
    "prefixAdvertisements": ListOf({"cidr": STR, "communities": ListOf(STR)}),
    "listenPort": INT,
    "nodeMeshPassword": BGP_PASSWORD,
    "nodeMeshMaxRestartTime": DURATION,
    "bindMode": Enum("None", "NodeIP"),
    "ignoredInterfaces": ListOf(STR),
    **_fields(STR, "localWorkloadPeeringIPV4 localWorkloadPeeringIPV6"),
}

BGP_PEER = {
    **_fields(STR, "node nodeSelector peerIP peerSelector reachableBy localWorkloadSelector"),
    **_fields(INT_OR_STR, "asNumber localASNumber"),
    "keepOriginalNextHop": BOOL,
    "nextHopMode": Enum("Auto", "Self", "Keep"),
    "password": BGP_PASSWORD,
    "sourceAddress": Enum("UseNodeIP", "None", empty_ok=True),
    "maxRestartTime": DURATION,
    **_fields(INT, "numAllowedLocalASNumbers ttlSecurity"),
    "filters": ListOf(STR),
    "reversePeering": Enum("Auto", "Manual"),
}

NODE = {
    "bgp": {"asNumber": INT_OR_STR,
            **_fields(STR, "ipv4Address ipv6Address ipv4IPIPTunnelAddr routeReflectorClusterID")},
    **_fields(STR, "ipv4VXLANTunnelAddr vxlanTunnelMACAddr ipv6VXLANTunnelAddr vxlanTunnelMACAddrV6"),
    "orchRefs": ListOf({"nodeName": STR, "orchestrator": STR}),
    "wireguard": _fields(STR, "interfaceIPv4Address interfaceIPv6Address"),
    "addresses": ListOf({"address": STR, "type": Enum("CalicoNodeIP", "InternalIP", "ExternalIP", empty_ok=True)}),
    "interfaces": ListOf({"name": STR, "addresses": ListOf(STR)}),
}
NODE_STATUS = {**_fields(STR, "wireguardPublicKey wireguardPublicKeyV6"), "podCIDRs": ListOf(STR)}

IP_POOL = {
    "cidr": STR,
    **_fields(ENCAP_MODE, "vxlanMode ipipMode"),
    **_fields(BOOL, "natOutgoing disabled disableBGPExport"),
    "blockSize": INT,
    **_fields(STR, "nodeSelector namespaceSelector"),
    "allowedUses": ListOf(Enum("Workload", "Tunnel", "LoadBalancer")),
    "assignmentMode": Enum("Automatic", "Manual"),
    # v1 leftovers the Go type still carries (Calico insists they stay unset; validate.py says so)
    "ipip": {"enabled": BOOL, "mode": Enum("always", "cross-subnet", empty_ok=True)},
    "nat-outgoing": BOOL,
}

CLUSTER_INFORMATION = {**_fields(STR, "clusterGUID clusterType calicoVersion variant"), "datastoreReady": BOOL}

PROFILE = {**_fields(ListOf(RULE), "ingress egress"), "labelsToApply": MapOf(STR)}

HOST_ENDPOINT = {
    **_fields(STR, "node interfaceName"),
    **_fields(ListOf(STR), "expectedIPs profiles"),
    "ports": ListOf(ENDPOINT_PORT),
}

_QOS_INTS = ("ingressBandwidth ingressBurst ingressPeakrate ingressMinburst egressBandwidth egressBurst "
             "egressPeakrate egressMinburst ingressPacketRate ingressPacketBurst egressPacketRate "
             "egressPacketBurst ingressMaxConnections egressMaxConnections")
WORKLOAD_ENDPOINT = {
    **_fields(STR, "orchestrator workload node containerID pod endpoint serviceAccountName ipv4Gateway "
                   "ipv6Gateway interfaceName mac"),
    **_fields(ListOf(STR), "ipNetworks profiles allowSpoofedSourcePrefixes"),
    "ipNATs": ListOf(_fields(STR, "internalIP externalIP")),
    "ports": ListOf({**ENDPOINT_PORT, "hostPort": INT, "hostIP": STR}),
    "qosControls": {**_fields(INT, _QOS_INTS), "dscp": INT_OR_STR},
}

_POLICY_COMMON = {
    "tier": STR, "order": NUM,
    **_fields(ListOf(RULE), "ingress egress"),
    **_fields(STR, "selector serviceAccountSelector"),
    "types": POLICY_TYPES,
    "performanceHints": PERFORMANCE_HINTS,
}
NETWORK_POLICY = dict(_POLICY_COMMON)
GLOBAL_NETWORK_POLICY = {**_POLICY_COMMON, **_fields(BOOL, "doNotTrack preDNAT applyOnForward"),
                         "namespaceSelector": STR}

FELIX_CONFIGURATION = {
    **_fields(BOOL, """
        allowIPIPPacketsFromWorkloads allowVXLANPacketsFromWorkloads bpfConnectTimeLoadBalancingEnabled
        bpfDisableUnprivileged bpfEnabled bpfHostConntrackBypass bpfKubeProxyEndpointSlicesEnabled
        bpfKubeProxyIptablesCleanupEnabled bpfPolicyDebugEnabled debugDisableLogDropping
        disableConntrackInvalidCheck endpointReportingEnabled flowLogsCollectorDebugTrace genericXDPEnabled
        healthEnabled ignoreLooseRPF ipipEnabled ipv6Support prometheusGoMetricsEnabled prometheusMetricsEnabled
        prometheusProcessMetricsEnabled prometheusWireGuardMetricsEnabled removeExternalRoutes requireMTUFile
        routeSyncDisabled sidecarAccelerationEnabled usageReportingEnabled useInternalDataplaneDriver
        vxlanEnabled wireguardEnabled wireguardEnabledV6 wireguardHostEncryptionEnabled
        wireguardThreadingEnabled xdpEnabled"""),
    **_fields(INT, """
        bpfExportBufferSizeMB bpfExtToServiceConnmark bpfKubeProxyHealthzPort bpfMapSizeConntrack
        bpfMapSizeConntrackCleanupQueue bpfMapSizeIPSets bpfMapSizeIfState bpfMapSizeNATAffinity
        bpfMapSizeNATBackend bpfMapSizeNATFrontend bpfMapSizePerCpuConntrack bpfMapSizeRoute debugPort
        deviceRouteProtocol goGCThreshold goMaxProcs goMemoryLimitMB healthPort ipipMTU
        logActionRateLimitBurst maxIpsetSize metadataPort prometheusMetricsPort vxlanMTU vxlanMTUV6 vxlanPort
        vxlanVNI wireguardListeningPort wireguardListeningPortV6 wireguardMTU wireguardMTUV6
        wireguardRoutingRulePriority iptablesMarkMask nftablesMarkMask"""),
    **_fields(DURATION, """
        bpfKubeProxyMinSyncPeriod dataplaneWatchdogTimeout debugSimulateCalcGraphHangAfter
        debugSimulateDataplaneApplyDelay debugSimulateDataplaneHangAfter endpointReportingDelay
        flowLogsFlushInterval interfaceRefreshInterval ipsetsRefreshInterval iptablesLockProbeInterval
        iptablesLockTimeout iptablesPostWriteCheckInterval iptablesRefreshInterval netlinkTimeout
        nftablesRefreshInterval reportingInterval reportingTTL routeRefreshInterval usageReportingInitialDelay
        usageReportingInterval wireguardKeepAlive xdpRefreshInterval"""),
    **_fields(STR, """
        bpfCTLBLogFilter bpfDataIfacePattern bpfDisableGROForIfaces bpfEnforceRPF bpfL3IfacePattern
        bpfMapSizeConntrackScaling bpfProfiling bpfRedirectToPeer cgroupV2Path chainInsertMode dataplaneDriver
        debugMemoryProfilePath deviceRouteSourceAddress deviceRouteSourceAddressIPv6 endpointStatusPathPrefix
        featureDetectOverride featureGates interfaceExclude interfacePrefix ipForwarding iptablesLockFilePath
        iptablesNATOutgoingInterfaceFilter logDebugFilenameRegex logFilePath logPrefix metadataAddr
        mtuIfacePattern natOutgoingAddress openstackRegion policySyncPathPrefix prometheusMetricsHost
        wireguardInterfaceName wireguardInterfaceNameV6 debugHost flowLogsGoldmaneServer flowLogsLocalReporter
        healthHost logActionRateLimit programClusterRoutes"""),
    **_fields(LOG_LEVEL_OR_EMPTY, "logSeverityFile logSeverityScreen logSeveritySys"),
    **_fields(Enum("Accept", "Return", empty_ok=True),
              "iptablesFilterAllowAction iptablesMangleAllowAction "
              "nftablesFilterAllowAction nftablesMangleAllowAction"),
    **_fields(Enum("Drop", "Reject", empty_ok=True), "iptablesFilterDenyAction nftablesFilterDenyAction"),
    "defaultEndpointToHostAction": Enum("Drop", "Accept", "Return", empty_ok=True),
    "bpfLogLevel": Enum("Debug", "Info", "Off", empty_ok=True),
    "bpfConntrackLogLevel": Enum("Off", "Debug", empty_ok=True),
    "bpfExternalServiceMode": Enum("Tunnel", "DSR", empty_ok=True),
    "routeSource": Enum("WorkloadIPs", "CalicoIPAM", empty_ok=True),
    "serviceLoopPrevention": Enum("Drop", "Reject", "Disabled", empty_ok=True),
    "workloadSourceSpoofing": Enum("Disabled", "Any", empty_ok=True),
    "iptablesBackend": Enum("Legacy", "NFT", "Auto"),
    "nftablesMode": Enum("Enabled", "Disabled", "Auto"),
    "awsSrcDstCheck": Enum("DoNothing", "Enable", "Disable"),
    "bpfAttachType": Enum("TC", "TCX"),
    "bpfConnectTimeLoadBalancing": Enum("TCP", "Enabled", "Disabled"),
    "bpfHostNetworkedNATWithoutCTLB": ENABLED,
    "bpfConntrackMode": Enum("Auto", "Userspace", "BPFProgram"),
    "bpfJITHardening": Enum("Auto", "Strict"),
    "floatingIPs": ENABLED,
    "windowsManageFirewallRules": ENABLED,
    "flowLogsPolicyEvaluationMode": Enum("None", "Continuous"),
    "natOutgoingExclusions": Enum("IPPoolsOnly", "IPPoolsAndHostIPs"),
    **_fields(ListOf({"protocol": STR, "port": INT, "net": STR}), "failsafeInboundHostPorts failsafeOutboundHostPorts"),
    "kubeNodePortRanges": ListOf(INT_OR_STR),
    **_fields(INT_OR_STR, "bpfPSNATPorts natPortRange"),
    **_fields(ListOf(STR), "bpfDSROptoutCIDRs bpfExcludeCIDRsFromNAT bpfForceTrackPacketsFromIfaces externalNodesList"),
    "bpfLogFilters": MapOf(STR),
    "healthTimeoutOverrides": ListOf({"name": STR, "timeout": DURATION}),
    "routeTableRange": {"min": INT, "max": INT},
    "routeTableRanges": ListOf({"min": INT, "max": INT}),
    "bpfConntrackTimeouts": _fields(STR, "creationGracePeriod tcpSynSent tcpEstablished tcpFinsSeen tcpResetSeen "
                                         "udpTimeout genericTimeout icmpTimeout"),
}

SPECS: dict[str, dict] = {
    "BGPConfiguration": BGP_CONFIGURATION,
    "BGPPeer": BGP_PEER,
    "Node": NODE,
    "IPPool": IP_POOL,
    "FelixConfiguration": FELIX_CONFIGURATION,
    "ClusterInformation": CLUSTER_INFORMATION,
    "Profile": PROFILE,
    "HostEndpoint": HOST_ENDPOINT,
    "WorkloadEndpoint": WORKLOAD_ENDPOINT,
    "GlobalNetworkPolicy": GLOBAL_NETWORK_POLICY,
    "NetworkPolicy": NETWORK_POLICY,
}
STATUSES: dict[str, dict] = {"Node": NODE_STATUS}  # the other kinds have no status in the v3 API

# -- the walker ---------------------------------------------------------------------------------
# Go's time.ParseDuration: a sequence of decimal numbers with units, optionally signed; "0" alone.
_DURATION_RE = re.compile(r"[-+]?(?:0|(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|µs|μs|ms|s|m|h))+)")
_SCALARS = {
    STR: (lambda v: isinstance(v, str), "a string"),
    INT: (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    BOOL: (lambda v: isinstance(v, bool), "a boolean"),
    NUM: (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
    INT_OR_STR: (lambda v: isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool)),
                 "an integer or a string"),
    DURATION: (lambda v: isinstance(v, str) and bool(_DURATION_RE.fullmatch(v)),
               "a duration such as '90s', '1m30s' or '250ms'"),
}


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _plain(item: Any, shape: Any) -> bool:
    """The common leaves, judged without a call of :func:`check` (same verdict, no path built)."""
    kind = type(item)
    return (shape is STR and kind is str) or (shape is INT and kind is int) or (shape is BOOL and kind is bool)


def check(value: Any, shape: Any, path: str) -> None:
    """Raise ValidationError naming ``path`` where ``value`` does not have ``shape``."""
    if shape is None:  # free-form (managedFields' fieldsV1): anything JSON
        return
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            raise ValidationError(f"{path}: must be a mapping, got {_show(value)}")
        for key, item in value.items():
            if key not in shape:
                raise ValidationError(f"{path}.{key}: unknown field")
            if item is not None and not _plain(item, shape[key]):  # None: the Go zero value, i.e. unset
                check(item, shape[key], f"{path}.{key}")
    elif isinstance(shape, ListOf):
        if not isinstance(value, list):
            raise ValidationError(f"{path}: must be a list, got {_show(value)}")
        for index, item in enumerate(value):
            if not _plain(item, shape.item):
                check(item, shape.item, f"{path}[{index}]")
    elif isinstance(shape, MapOf):
        if not isinstance(value, dict):
            raise ValidationError(f"{path}: must be a mapping, got {_show(value)}")
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(f"{path}: keys must be strings, got {_show(key)}")
            if item is not None and not _plain(item, shape.value):  # None: a label removal marker
                check(item, shape.value, f"{path}.{key}")
    elif isinstance(shape, Enum):
        if not (isinstance(value, str) and (value in shape.values or (shape.empty_ok and value == ""))):
            raise ValidationError(f"{path}: {_show(value)} is not one of {', '.join(shape.values)}")
    else:
        test, what = _SCALARS[shape]
        if not test(value):
            raise ValidationError(f"{path}: must be {what}, got {_show(value)}")


def check_resource(resource: dict) -> None:
    """Check metadata and spec of a resource of a known kind against its v3 shape."""
    kind = resource["kind"]
    check(resource.get("metadata") or {}, OBJECT_META, f"{kind}.metadata")
    check(resource.get("spec") or {}, SPECS[kind], f"{kind}.spec")


def check_status(kind: str, status: Any) -> None:
    """A given status must be the kind's (only Node has one); the store never writes it."""
    if status is None:
        return
    if kind not in STATUSES:
        raise ValidationError(f"{kind}.status: unknown field ({kind} has no status in the v3 API)")
    check(status, STATUSES[kind], f"{kind}.status")
