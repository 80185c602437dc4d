"""AWS Lambda handlers of the image service: ``ingest`` and ``status`` (see README.md)."""
