"""What the model store raises, whichever backend holds it."""


class ModelNotFound(LookupError):
    """No such model or version in the store."""


class CorruptModel(RuntimeError):
    """A stored model whose file does not match the sha256 in its metadata."""


class StoreUnavailable(RuntimeError):
    """The store cannot be reached (or refuses us): names the store, never its credentials.

    Every call of the object-store backend raises this for a network failure, a timeout, missing or
    refused credentials or a missing bucket, so a service can keep serving what it holds and say why."""
