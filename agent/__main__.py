"""``python -m agent``: run the queue agent until SIGTERM, then shut down gracefully."""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

from agent import logs
from agent.aws import make_clients
from agent.config import ConfigError, load_config
from agent.health import HealthServer
from agent.pipeline import Pipeline
from agent.runtimes import create_adapter


def main() -> int:
    try:
        config = load_config()
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    logs.setup(config.log_level)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logs.event("signal_received", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    pipeline = Pipeline(config, make_clients(config), create_adapter(config))
    health = None
    if config.health_port:
        health = HealthServer(config.health_port, pipeline.live, pipeline.ready,
                              host=config.health_host)
        health.start()
    pipeline.start()
    while not stop.wait(1.0):
        pass
    pipeline.shutdown()
    if health is not None:
        health.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
