"""Fake HTTP servers for tests: SD WebUI, ComfyUI and an image host, on loopback only.

They follow the shapes in ``shared/runtime-apis.md`` (including error shapes) and take fault
switches: slow, fail with a status, hang, crash mid-request, die (connection refused).
"""
