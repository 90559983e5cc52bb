"""Request body parsers: JSON whose strings are text.

JSON may spell a lone UTF-16 surrogate (``"\\ud800"``); Python decodes it into a
string that no database and no UTF-8 response can hold, so it failed deep in a
write as a 500. Refused at the door instead, with a 400 that says why.
"""

from __future__ import annotations

import json

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class TextJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ParseError(
                "The JSON holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is "
                "not text; send the characters themselves as UTF-8."
            ) from None
        return data
