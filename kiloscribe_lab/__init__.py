"""kiloscribe-lab: probes, diagnosis, a local lab and reports for Socket.IO services."""

from __future__ import annotations

__version__ = "0.1.0"
