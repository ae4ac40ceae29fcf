"""Authentication (tokens, accounts), authorisation (one policy table) and the audit trail."""
