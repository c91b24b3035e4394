"""Keep uploaded files in memory, all the way through the web server.

Streamlit's upload endpoint parses the multipart body with Starlette, whose parser moves any file part over
1 MiB into an unnamed temporary file on disk (``SpooledTemporaryFile``). Ordinary phone photos are larger
than that, so without this module every such upload would touch the disk of the server, if only
briefly. Raising the spool threshold above the upload limit keeps every accepted upload in memory; bodies
over the limit are refused by Streamlit while they stream in, before they could reach the threshold.
"""

from __future__ import annotations

import logging

from dermlib.images import MAX_BYTES

logger = logging.getLogger(__name__)

# Multipart framing (boundaries, headers) on top of the file itself.
_MARGIN = 1 << 20


def keep_uploads_in_memory(max_bytes: int = MAX_BYTES) -> bool:
    """Make the web server hold uploads of up to ``max_bytes`` in memory instead of spooling them to disk.

    Safe to call on every script run (it only raises a class attribute).

    Args:
        max_bytes: The largest upload accepted (Streamlit's ``server.maxUploadSize``).

    Returns:
        True when the setting is in place; False when the server's parser is not Starlette's (then nothing
        is changed and a warning is logged once).
    """
    try:
        from starlette.formparsers import MultiPartParser
    except ImportError:
        logger.warning("Starlette is not installed; cannot keep multipart uploads in memory.")
        return False
    if not hasattr(MultiPartParser, "spool_max_size"):
        logger.warning("This Starlette has no MultiPartParser.spool_max_size; uploads may be spooled to disk.")
        return False
    wanted = max_bytes + _MARGIN
    if MultiPartParser.spool_max_size < wanted:
        MultiPartParser.spool_max_size = wanted
    return True
