"""Backline: the Supabase backend local-first apps add when they outgrow the browser."""
