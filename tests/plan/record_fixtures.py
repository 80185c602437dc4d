"""Re-record the plan JSON fixtures in tests/plan/fixtures/ from real Terraform runs.

    python -m tests.plan.record_fixtures                       # builtin-provider plans
    python -m tests.plan.record_fixtures --aws-mirror DIR      # also the AWS plans

``--aws-mirror`` is a Terraform filesystem mirror holding hashicorp/aws 5.100.0; the AWS
plans are made against a moto server started on loopback for the run.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from tests.plan.tfplans import FIXTURES, aws_plans, builtin_plans


def write(name: str, plan: dict[str, Any]) -> Path:
    path = FIXTURES / f"{name}.plan.json"
    path.write_text(json.dumps(plan, indent=1, sort_keys=True) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aws-mirror", type=Path, help="filesystem mirror with hashicorp/aws")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        plans = builtin_plans(Path(tmp) / "builtin")
        if args.aws_mirror:
            from sdaas.local.emulator import Emulator

            with Emulator() as emulator:
                plans |= aws_plans(Path(tmp) / "aws", args.aws_mirror, emulator.endpoint)
    for name, plan in sorted(plans.items()):
        print(write(name, plan))


if __name__ == "__main__":
    main()
