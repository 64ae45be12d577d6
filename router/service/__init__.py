"""The composition root: settings, stores, keys, consent parts and the broker put together."""
