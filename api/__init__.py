"""The API layer's top: the one GraphQL schema, assembled above the resolvers it serves."""
