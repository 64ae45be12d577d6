"""The ``sambus`` command line: one module per command group; ``main`` puts them together."""
