"""The revisions, oldest first: ``v0001_baseline`` is the schema sambus made before it had migrations."""
