"""Uploads: checking what a stored file really is (type sniffing, optional ClamAV scan)."""
