"""Domain operations and their invariants. The GraphQL layer only calls in here."""
