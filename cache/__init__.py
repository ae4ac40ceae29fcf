"""Redis-backed state: the connection, the versioned document cache under the loaders, the live
equipment status, and the runtime that hands them to services."""
