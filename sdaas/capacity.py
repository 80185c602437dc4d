"""Which system node type fits: the requests of every pod on the system nodes, on the
busiest node, against each candidate type's allocatable CPU, memory and pod slots.

Requests come from the values this project renders for its own releases
(``helm-values/karpenter.yaml``, ``helm-values/keda.yaml``) and from the add-ons' published
defaults (:data:`ADDON_PODS`, each with its source). The busiest node holds one copy of
every DaemonSet pod and ``ceil(replicas / nodes)`` of every Deployment (a conservative
packing: single replicas may all land on one node). A type fits when that node's requests
stay within its allocatable CPU and memory and :data:`SURGE_SLOTS` pod slots stay free
for rolling updates.

Allocatable, as the EKS AMIs (nodeadm) compute it: kube-reserved CPU is 6 % of the first
core, 1 % of the second, 0.5 % of the next two; kube-reserved memory is 255 MiB + 11 MiB
per pod slot; 100 MiB hard eviction threshold. Pod slots (``maxPods``) follow the VPC CNI
limit per instance type without prefix delegation. Sources:
https://github.com/awslabs/amazon-eks-ami/blob/main/nodeadm/internal/kubelet/config.go and
https://github.com/awslabs/amazon-eks-ami/blob/main/templates/shared/runtime/eni-max-pods.txt
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from constructs_lib.helm_values import load_values
from sdaas.costs import HOURS_PER_MONTH, ON_DEMAND_PER_HOUR

if TYPE_CHECKING:
    from sdaas.config import Config

SURGE_SLOTS = 2
EVICTION_MIB = 100


@dataclass(frozen=True)
class SystemPod:
    name: str
    replicas: int | None  # None: a DaemonSet (one per node)
    cpu_m: int
    memory_mi: int
    source: str


@dataclass(frozen=True)
class NodeType:
    name: str
    vcpus: int
    memory_mib: int
    max_pods: int
    arch: str

    @property
    def allocatable_cpu_m(self) -> int:
        shares = (60, 10, 5, 5) + (2.5,) * max(0, self.vcpus - 4)  # millicores per core
        return self.vcpus * 1000 - math.ceil(sum(shares[:self.vcpus]))

    @property
    def allocatable_memory_mi(self) -> int:
        return self.memory_mib - (255 + 11 * self.max_pods) - EVICTION_MIB


# Candidates, cheapest first within each architecture (vCPUs, MiB, maxPods).
NODE_TYPES = tuple(NodeType(*spec) for spec in (
    ("t4g.small", 2, 2048, 11, "arm64"),
    ("t4g.medium", 2, 4096, 17, "arm64"),
    ("m7g.medium", 1, 4096, 8, "arm64"),
    ("t4g.large", 2, 8192, 35, "arm64"),
    ("m7g.large", 2, 8192, 29, "arm64"),
    ("t3.medium", 2, 4096, 17, "x86_64"),
    ("m7i.large", 2, 8192, 29, "x86_64"),
))

_CW_CHART = ("https://github.com/aws-observability/helm-charts/blob/main/charts/"
             "amazon-cloudwatch-observability/values.yaml")
# Pods the EKS add-ons put on every node or on the system nodes, with their default
# requests (CPU millicores, MiB); the observability ones only when that add-on is on.
ADDON_PODS = (
    SystemPod("aws-node (vpc-cni)", None, 25, 0,
              "https://github.com/aws/amazon-vpc-cni-k8s/blob/master/charts/aws-vpc-cni/"
              "values.yaml (the network policy agent has none)"),
    SystemPod("kube-proxy", None, 100, 0,
              "the EKS kube-proxy DaemonSet (`kubectl -n kube-system get ds kube-proxy`)"),
    SystemPod("eks-pod-identity-agent", None, 0, 0,
              "https://github.com/aws/eks-pod-identity-agent/blob/main/charts/"
              "eks-pod-identity-agent/values.yaml (no requests)"),
    SystemPod("s3-csi-node (Mountpoint for S3)", None, 10, 40,
              "https://github.com/awslabs/mountpoint-s3-csi-driver/blob/main/charts/"
              "aws-mountpoint-s3-csi-driver/values.yaml"),
    SystemPod("s3-csi-controller (Mountpoint for S3)", 1, 0, 0,
              "same chart (no requests)"),
    SystemPod("coredns", 2, 100, 70,
              "the EKS CoreDNS Deployment, as upstream: https://github.com/coredns/deployment/"
              "blob/master/kubernetes/coredns.yaml.sed"),
)
OBSERVABILITY_PODS = (
    SystemPod("cloudwatch-agent", None, 250, 128, _CW_CHART),
    SystemPod("fluent-bit", None, 50, 25, _CW_CHART),
    SystemPod("amazon-cloudwatch-observability controller", 1, 100, 64, _CW_CHART),
)


def cpu_millicores(quantity: Any) -> int:
    """``500m`` -> 500, ``1`` -> 1000, ``0.5`` -> 500."""
    text = str(quantity)
    if text.endswith("m"):
        return int(text[:-1])
    return round(float(text) * 1000)


def mebibytes(quantity: Any) -> int:
    """``512Mi`` -> 512, ``1Gi`` -> 1024 (the binary suffixes the values use)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(Mi|Gi)", str(quantity))
    if match is None:
        raise ValueError(f"memory quantity {quantity!r}: expected a value like 512Mi or 1Gi")
    return round(float(match.group(1)) * (1024 if match.group(2) == "Gi" else 1))


def _requests(resources: Any) -> tuple[int, int]:
    requests = (resources or {}).get("requests") or {}
    return (cpu_millicores(requests.get("cpu", "0")),
            mebibytes(requests["memory"]) if "memory" in requests else 0)


def release_pods() -> list[SystemPod]:
    """The system pods of this project's own releases, from their values files."""
    karpenter, keda = load_values("karpenter"), load_values("keda")
    pods = [SystemPod("karpenter controller", int(karpenter.get("replicas", 2)),
                      *_requests((karpenter.get("controller") or {}).get("resources")),
                      "helm-values/karpenter.yaml")]
    for key, component, replicas_key in (("operator", "keda operator", "operator"),
                                         ("metricServer", "keda metrics API server",
                                          "metricsServer"),
                                         ("webhooks", "keda admission webhooks", "webhooks")):
        replicas = int((keda.get(replicas_key) or {}).get("replicaCount", 1))
        pods.append(SystemPod(component, replicas,
                              *_requests((keda.get("resources") or {}).get(key)),
                              "helm-values/keda.yaml"))
    return pods


def system_pods(config: Config) -> list[SystemPod]:
    observability = config.cluster.cloudwatch_observability_version is not False
    return [*release_pods(), *ADDON_PODS, *(OBSERVABILITY_PODS if observability else ())]


@dataclass(frozen=True)
class BusiestNode:
    cpu_m: int
    memory_mi: int
    pods: int


def busiest_node(pods: list[SystemPod], nodes: int) -> BusiestNode:
    share = [1 if pod.replicas is None else math.ceil(pod.replicas / nodes) for pod in pods]
    return BusiestNode(cpu_m=sum(n * pod.cpu_m for n, pod in zip(share, pods, strict=True)),
                       memory_mi=sum(n * pod.memory_mi for n, pod in zip(share, pods,
                                                                          strict=True)),
                       pods=sum(share))


def fits(node: NodeType, need: BusiestNode) -> bool:
    return (need.cpu_m <= node.allocatable_cpu_m and need.memory_mi
            <= node.allocatable_memory_mi and need.pods + SURGE_SLOTS <= node.max_pods)


def smallest_fit(config: Config) -> NodeType | None:
    """The cheapest candidate type that holds the system pods on the configured node count."""
    need = busiest_node(system_pods(config), config.cluster.system_node_group.desired_size)
    fitting = [n for n in NODE_TYPES if fits(n, need) and n.name in ON_DEMAND_PER_HOUR]
    return min(fitting, key=lambda n: ON_DEMAND_PER_HOUR[n.name], default=None)


def capacity_markdown(config: Config) -> str:
    """The arithmetic behind the system node type, as Markdown."""
    nodes = config.cluster.system_node_group.desired_size
    pods = system_pods(config)
    need = busiest_node(pods, nodes)
    pod_rows = [
        f"| {pod.name} | {'every node' if pod.replicas is None else pod.replicas} | "
        f"{pod.cpu_m}m | {pod.memory_mi} Mi | {pod.source} |" for pod in pods]
    type_rows = []
    for node in NODE_TYPES:
        price = ON_DEMAND_PER_HOUR.get(node.name)
        monthly = "" if price is None else f"${price * nodes * HOURS_PER_MONTH:,.2f}"
        verdict = "fits" if fits(node, need) else "does not fit"
        type_rows.append(
            f"| {node.name} ({node.arch}) | {monthly} | {node.allocatable_cpu_m}m | "
            f"{node.allocatable_memory_mi} Mi | {node.max_pods} | {verdict} |")
    best = smallest_fit(config)
    configured = config.cluster.system_node_group.instance_type
    return "\n".join([
        f"System pods and their requests ({nodes} system nodes):",
        "",
        "| pod | replicas | CPU | memory | source |",
        "|---|---|---|---|---|",
        *pod_rows,
        "",
        f"Busiest node: {need.cpu_m}m CPU, {need.memory_mi} Mi, {need.pods} pods "
        f"(+{SURGE_SLOTS} free slots for rolling updates).",
        "",
        f"| system node type | {nodes} nodes / month | allocatable CPU | allocatable memory "
        "| pod slots | busiest node |",
        "|---|---|---|---|---|---|",
        *type_rows,
        "",
        f"Smallest type that fits: {best.name if best else 'none of the candidates'}; "
        f"configured: {configured}.",
        "",
    ])
