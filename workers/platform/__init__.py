"""Platform adapters: storage and auth admin, over Supabase's SDKs or locally (DESIGN.md principle 4)."""
