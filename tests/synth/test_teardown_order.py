"""The teardown order is encoded in the dependency graph (destroy runs it in reverse).

    scaler release -> runtime release -> NodePool release -> WaitForNodes step
      -> Karpenter release -> DeleteLeftovers step -> cluster (ready set)

"A -> B" reads "A depends on B": Terraform destroys A before B.
"""

from __future__ import annotations

import pytest

RUNTIMES = ("sdruntime", "comfyui")


def _address(synthesized, rtype: str, path: str) -> str:
    hits = [rid for rid, body in synthesized.resources(rtype).items()
            if body["//"]["metadata"]["path"] == f"sdaas/{path}"]
    assert len(hits) == 1, f"{len(hits)} {rtype} at {path}"
    return f"{rtype}.{hits[0]}"


def _depends(synthesized, address: str) -> set[str]:
    rtype, rid = address.split(".")
    return set(synthesized.resources(rtype)[rid].get("depends_on", []))


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_runtime_goes_before_its_pool_and_scaler_before_runtime(synthesized, runtime):
    scaler = _address(synthesized, "helm_release", f"Keda/Runtime-{runtime}/Release")
    workload = _address(synthesized, "helm_release", f"Runtime-{runtime}/Release")
    pool = _address(synthesized, "helm_release", f"Karpenter/Pool-{runtime}")
    assert workload in _depends(synthesized, scaler)
    assert pool in _depends(synthesized, workload)


def test_pools_then_wait_for_nodes_then_karpenter_then_leftovers(synthesized):
    wait = _address(synthesized, "terraform_data", "Karpenter/WaitForNodes")
    karpenter = _address(synthesized, "helm_release", "Karpenter/Karpenter")
    leftovers = _address(synthesized, "terraform_data", "Karpenter/DeleteLeftovers")
    for runtime in RUNTIMES:
        pool = _address(synthesized, "helm_release", f"Karpenter/Pool-{runtime}")
        assert wait in _depends(synthesized, pool)
    assert karpenter in _depends(synthesized, wait)
    assert leftovers in _depends(synthesized, karpenter)
    node_group = _address(synthesized, "aws_eks_node_group", "Cluster/SystemNodeGroup")
    assert node_group in _depends(synthesized, leftovers)


def test_steps_run_only_at_destroy_with_values_from_state(synthesized):
    steps = synthesized.resources("terraform_data")
    assert len(steps) == 2
    for body in steps.values():
        (provisioner,) = body["provisioner"]
        local_exec = provisioner["local-exec"]
        assert local_exec["when"] == "destroy"
        assert local_exec["command"].startswith("bash assets/TeardownScripts/")
        for name in body["input"]:
            assert f"${{self.input.{name}}}" in local_exec["command"]
