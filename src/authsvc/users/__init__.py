"""Users: the table, the repository interface, passwords and email rules."""
