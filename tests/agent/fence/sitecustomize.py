"""Network fence for agent processes started by the tests (loaded via PYTHONPATH).

Refuses any connection or name lookup that is not loopback, so a bug in the agent's input
guard fails a test with a connection error instead of sending traffic off this machine.
"""

from __future__ import annotations

import os

if os.environ.get("AGENT_TEST_NETWORK_FENCE") == "1":
    import importlib.util

    _path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         "netfence.py")
    _spec = importlib.util.spec_from_file_location("_agent_test_netfence", _path)
    assert _spec is not None and _spec.loader is not None
    _module = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_module)
    _module.install()
