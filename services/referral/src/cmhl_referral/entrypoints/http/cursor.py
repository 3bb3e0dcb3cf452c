"""Opaque page cursors: the (received_at, id) of the last row, so pages never skip or repeat."""

import base64
import binascii
import json
from datetime import datetime

from fastapi import HTTPException, status
from pydantic import TypeAdapter, ValidationError

from cmhl_contracts.envelope import UtcDatetime

_MOMENT: TypeAdapter[datetime] = TypeAdapter(UtcDatetime)


def encode_cursor(received_at: datetime, referral_id: str) -> str:
    raw = json.dumps([received_at.isoformat(), referral_id]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        # ASCII only: a cursor we issued is base64; anything else (an unpaired surrogate, say)
        # is refused here rather than deep in a codec.
        at, referral_id = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
        moment = _MOMENT.validate_python(at)
    except (ValueError, TypeError, binascii.Error, ValidationError) as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "cursor is not one we issued") from exc
    if not isinstance(referral_id, str) or len(referral_id) > 64:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "cursor is not one we issued")
    return moment, referral_id
