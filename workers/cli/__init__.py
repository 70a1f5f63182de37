"""The `backline` operator CLI: one Typer app per command group."""
