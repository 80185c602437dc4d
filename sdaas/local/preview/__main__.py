"""``python -m sdaas.local.preview``: see the package docstring."""

from sdaas.local.preview.server import main

raise SystemExit(main())
