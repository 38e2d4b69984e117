"""coopnet.deploy."""
