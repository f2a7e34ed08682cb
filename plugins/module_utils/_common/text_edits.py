# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Byte-preserving edits: replace spans of a text and keep every other character (NGINX and HAProxy editors)."""


def splice(text, edits, error=ValueError):
    """Apply non-overlapping ``(start, end, replacement)`` edits to ``text`` in one pass.

    Offsets index the original ``text``; an insertion has ``start == end``. Overlapping edits are a bug in the
    caller and raise ``error`` (the caller's own exception class).
    """
    ordered = sorted(((start, end, index, replacement) for index, (start, end, replacement) in enumerate(edits)))
    pieces = []
    position = 0
    for start, end, dummy, replacement in ordered:
        if start < position:
            raise error('internal error: overlapping edits at offset %d' % start)
        pieces.append(text[position:start])
        pieces.append(replacement)
        position = end
    pieces.append(text[position:])
    return ''.join(pieces)
