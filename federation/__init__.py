"""coopnet.federation."""
