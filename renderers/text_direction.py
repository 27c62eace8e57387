"""Right-to-left text (Arabic, Hebrew, ...) in the renderers.

The formats differ in what they do for such text themselves. Browsers order bidirectional text and join
Arabic letters, given the direction (``dir``). fpdf2 does both with HarfBuzz shaping turned on. matplotlib
does both from version 3.11, which lays text out with libraqm; before it, matplotlib drew code points one
after the other, left to right, each in its isolated form, and a label had to be handed to it in display
form: letters replaced by their joined presentation forms (arabic_reshaper) and put in visual order (the
Unicode bidirectional algorithm, python-bidi). ``display_form`` gives that form; the chart renderer uses it
only when its matplotlib does not lay text out itself, as doing both would reverse the text twice.
"""

from __future__ import annotations

import unicodedata
from typing import Literal

from arabic_reshaper import reshape
from bidi.algorithm import get_display

# Bidirectional classes of strong right-to-left characters: Hebrew and the like (R), Arabic letters (AL).
_RTL_CLASSES = frozenset({"R", "AL"})
# Hebrew, the first block past Latin, Greek and Cyrillic that needs shaping or reordering.
_FIRST_COMPLEX = 0x0590
# General punctuation through miscellaneous symbols and arrows: drawn glyph by glyph.
_SYMBOLS = (0x2000, 0x2BFF)


def has_rtl(text: str) -> bool:
    """Whether any character of ``text`` is strongly right-to-left."""
    return any(unicodedata.bidirectional(character) in _RTL_CLASSES for character in text)


def base_direction(text: str) -> Literal["ltr", "rtl"]:
    """The paragraph direction of ``text``: that of its first strong character (rule P2 of the Unicode
    bidirectional algorithm, what ``dir="auto"`` does in a browser); left-to-right without any."""
    for character in text:
        kind = unicodedata.bidirectional(character)
        if kind in _RTL_CLASSES:
            return "rtl"
        if kind == "L":
            return "ltr"
    return "ltr"


def needs_shaping(text: str) -> bool:
    """Whether ``text`` has characters of a script whose glyphs depend on their neighbours or on direction
    (Hebrew onwards in Unicode, punctuation and symbols aside): text without any is drawn as well, and
    faster, glyph by glyph."""
    return any(
        ord(character) >= _FIRST_COMPLEX and not _SYMBOLS[0] <= ord(character) <= _SYMBOLS[1] for character in text
    )


def display_form(text: str) -> str:
    """``text`` as a renderer that neither shapes nor reorders must draw it; unchanged without RTL text."""
    if not has_rtl(text):
        return text
    return str(get_display(reshape(text)))
