"""Identity work only a worker can do (moving a merged account's files)."""
