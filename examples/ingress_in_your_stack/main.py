"""Use a construct of this library in your own CDKTF stack.

Your stack owns the provider and the backend; the construct only creates resources. Here a
team adds the task front door (API, queues, bucket, table, Lambdas) for one runtime to a
stack of its own, and gives an existing role of theirs the right to consume the tasks.

    python examples/ingress_in_your_stack/main.py      # writes cdktf.out/stacks/my-team-stack
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a clone

from cdktf import App, LocalBackend, TerraformOutput, TerraformStack
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.provider import AwsProvider
from constructs import Construct

from constructs_lib.ingress import (
    RuntimeSpec,
    ServerlessIngress,
    ServerlessIngressProps,
)


class MyTeamStack(TerraformStack):
    def __init__(self, scope: Construct, id_: str) -> None:
        super().__init__(scope, id_)
        LocalBackend(self, path="terraform.tfstate")
        AwsProvider(self, "aws", region="eu-west-1")
        # The bindings pin the provider release they were generated from (5.99.1); accept
        # any compatible 5.x instead, as this project's own app does.
        self.add_override("terraform.required_providers.aws",
                          {"source": "hashicorp/aws", "version": "~> 5.99"})

        ingress = ServerlessIngress(self, "Ingress", props=ServerlessIngressProps(
            name="myteam",
            runtimes=(RuntimeSpec(name="sdxl", type="sdwebui",
                                  models=("sd_xl_base_1.0.safetensors",)),),
            rate_limit_per_second=10,
            burst_limit=20,
        ))

        # A worker of yours (outside EKS, say) that consumes the tasks: grant, don't hand-write.
        worker = Construct(self, "Worker")
        role = IamRole(worker, "Role", name="myteam-worker",
                       assume_role_policy='{"Version":"2012-10-17","Statement":[{"Effect":'
                       '"Allow","Principal":{"Service":"ec2.amazonaws.com"},'
                       '"Action":"sts:AssumeRole"}]}')
        ingress.grant_consume(worker, "sdxl", role_name=role.name)
        ingress.grant_write_outputs(worker, role_name=role.name)
        ingress.grant_update_status(worker, role_name=role.name)
        ingress.grant_publish_results(worker, role_name=role.name)

        TerraformOutput(self, "api_endpoint", value=ingress.api_endpoint)
        TerraformOutput(self, "queue_url", value=ingress.queue_for("sdxl").queue_url)


def build(outdir: str = "cdktf.out") -> App:
    app = App(outdir=outdir)
    MyTeamStack(app, "my-team-stack")
    return app


if __name__ == "__main__":
    build().synth()
