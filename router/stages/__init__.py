"""The stages of ``sambus run``: the transactional engine and one module per stage."""
