"""Runtime adapters by ``RUNTIME_TYPE``."""

from __future__ import annotations

from agent.config import AgentConfig
from agent.runtimes.base import Cancelled, Prepared, RuntimeAdapter, RuntimeOutput
from agent.runtimes.comfyui import ComfyUiAdapter
from agent.runtimes.sdwebui import SdWebUiAdapter

ADAPTERS: dict[str, type[RuntimeAdapter]] = {
    SdWebUiAdapter.type_name: SdWebUiAdapter,
    ComfyUiAdapter.type_name: ComfyUiAdapter,
}


def create_adapter(config: AgentConfig) -> RuntimeAdapter:
    return ADAPTERS[config.runtime_type](config)


__all__ = ["ADAPTERS", "Cancelled", "Prepared", "RuntimeAdapter", "RuntimeOutput",
           "create_adapter"]
