"""The thin typer command line over the segpipe library (one module per command)."""
