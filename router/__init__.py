"""The running service: routing, delivery, the CLI. The composition root: it may import every package.

Concept folders, each importing only those before it: ``settings`` < ``kafka`` < ``ops`` < ``routing`` <
``stats`` < ``stages`` < ``service`` < ``dev`` < ``web`` < ``cli``.
"""

from __future__ import annotations

from sambus.router.service.bootstrap import Sambus, bootstrap
from sambus.router.settings import Settings

__all__ = ["Sambus", "Settings", "bootstrap"]
