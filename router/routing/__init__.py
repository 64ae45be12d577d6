"""Routing: the directory of organisations, the resolution rules, per-recipient projection and notices."""
