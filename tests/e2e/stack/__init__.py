"""End to end through the local stack (``make local``'s code): HTTP request in, image out."""
