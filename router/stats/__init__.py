"""The agreements' follow-up indicators, from anonymous facts, with small-cell suppression."""
