"""Local mode: the whole asynchronous path on one machine, against a local AWS emulator."""
