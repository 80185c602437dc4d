"""``python -m constructs_lib.local.preview``: see the package docstring."""

from constructs_lib.local.preview.server import main

raise SystemExit(main())
