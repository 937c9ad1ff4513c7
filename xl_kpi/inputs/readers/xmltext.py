"""Text of an XML element as it is stored in a workbook's parts, its entities decoded (``&lt;`` ``&gt;``
``&quot;`` ``&apos;`` ``&amp;``), as ``xml.sax.saxutils.unescape`` decodes them, without importing ``xml.sax``:
its ``saxutils`` pulls in urllib, http.client and ssl, a few hundredths of a second of every validation."""

from __future__ import annotations


def unescape(text: str) -> str:
    """``text`` with the five XML entities decoded; ``&amp;`` last, so ``&amp;lt;`` stays ``&lt;``."""
    for entity, char in (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'")):
        text = text.replace(entity, char)
    return text.replace("&amp;", "&")
