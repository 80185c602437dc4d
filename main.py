"""The app: load the configuration file, build the stack from the constructs, synthesize.

    python3 main.py            # writes cdktf.out/stacks/<name>/cdk.tf.json
    SD_CONFIG=my.yaml python3 main.py

``cdktf synth`` runs this file too (see cdktf.json).
"""

from __future__ import annotations

import os
import sys

# The generated provider bindings are large Python modules; compiling them on every run costs
# more than half a second, so their bytecode is cached even where the environment turns
# bytecode writing off (PYTHONDONTWRITEBYTECODE).
sys.dont_write_bytecode = False

from sdaas.config import ConfigError, config_path, load_config  # noqa: E402


def main() -> int:
    try:
        config = load_config()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    from sdaas.app import synth  # noqa: PLC0415 - after the config is known good

    outdir = os.environ.get("CDKTF_OUTDIR", "cdktf.out")
    stack_dir = synth(config, outdir)
    print(f"{config_path()} -> {stack_dir}/cdk.tf.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
