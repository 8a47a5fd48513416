"""The Matrix adapter (matrix-nio): companies that host their own messaging.

inbound.py   room events -> Pinwall events (pure)
render.py    neutral messages -> Matrix HTML, numbered choices and reaction prompts (pure)
adapter.py   the client-server API I/O: login, the sync loop, sends, files
"""

from adapters.matrix.adapter import MatrixAdapter

__all__ = ["MatrixAdapter"]
