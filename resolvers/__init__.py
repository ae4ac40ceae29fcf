"""Root Query and Mutation fields, one module per domain: read arguments, call services."""
