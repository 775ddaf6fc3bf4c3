"""The error an item's processing raises: one line of `reason` that goes into the ledger as is."""


class ItemError(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
