"""Local mode: the preview runtimes, the API adapter, sdctl, and the whole stack end to end."""
