"""The Content-Security-Policy of the verification page, for both servers that serve it:
``mrv serve`` (:mod:`mrv_ml.serve.local`) and the registry's ``/explorer/``
(:mod:`mrv_ml.registry_service.app`).

One policy: only the page's own scripts, styles and images, no forms, no frames, no base
URL. The one difference is where the page may connect (``connect_src``): ``mrv serve``
bridges chains itself, so beside its own API only a node on this machine (manual RPC
mode); the registry's page lets a reader type any http or https endpoint to verify
against. A static bundle (:mod:`mrv_ml.reporting.bundle`) carries its policy in a
``<meta>`` tag instead, where ``frame-ancestors`` has no effect, so it keeps its own.
"""

from __future__ import annotations

__all__ = ["LOCAL_CONNECT", "REGISTRY_CONNECT", "page_policy"]

#: ``mrv serve``: its own bridge and API, or a node on this machine.
LOCAL_CONNECT = "'self' http://127.0.0.1:* http://localhost:*"
#: The registry's explorer page: its API, and any chain endpoint the reader chooses.
REGISTRY_CONNECT = "'self' https: http:"


def page_policy(connect_src: str) -> str:
    """The page's policy, connecting only to ``connect_src``."""
    return ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src {connect_src}; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'")
