"""Opaque page cursors: the (received_at, id) of the last row, so pages never skip or repeat."""

import base64
import binascii
import json
from datetime import datetime

from fastapi import HTTPException, status


def encode_cursor(received_at: datetime, referral_id: str) -> str:
    raw = json.dumps([received_at.isoformat(), referral_id]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        at, referral_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        moment = datetime.fromisoformat(at)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "cursor is not one we issued") from exc
    if moment.tzinfo is None or not isinstance(referral_id, str):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "cursor is not one we issued")
    return moment, referral_id
