"""The work behind each CLI command, kept out of cli.py so that it stays a thin shell."""
