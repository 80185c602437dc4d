"""The queue agent: runs beside an inference runtime and feeds it tasks from SQS.

Start it with ``python -m agent``; its environment is documented in ``agent/README.md``.
"""
