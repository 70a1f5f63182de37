"""Background jobs: the SQL queue's client (two transports), the worker runtime and the handler registry."""
