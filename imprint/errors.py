"""Errors the library's parts raise for the config layer to report under a config key."""

from __future__ import annotations


class SpecError(ValueError):
    """A model or dataset spec that cannot work, found by its source's ``check``: ``field``
    names the spec's key (``name``, ``weights``, ...); the config reports it as
    ``models.<model>.<field>`` (:func:`imprint.config.check_config`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
