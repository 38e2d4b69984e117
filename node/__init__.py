"""coopnet.node."""
