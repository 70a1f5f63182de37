"""AI proxy: users' own provider keys, rate limits, budgets, usage, streaming."""
