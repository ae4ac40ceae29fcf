"""Encryption at rest: master keys (``keys``), data keys (``keyring``), sealed fields (``fields``).

Below ``models``: documents declare which of their fields are sealed, ``db`` seals them on every
write to MongoDB and ``models.trusted`` (and model validation) opens them when a document is
built, so MongoDB and the Redis document cache only ever hold ciphertext.
"""
