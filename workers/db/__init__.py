"""Database plumbing: the embedded server, connections, platform layer, migrations."""
