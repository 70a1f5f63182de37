"""Billing: Stripe webhook signature checks and event processing (plan changes live in SQL)."""
