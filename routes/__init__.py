"""Plain HTTP endpoints beside ``/graphql``, one module per feature (see ``app.py``)."""
