"""The referral service, asked as the caller (their bearer token is forwarded): whether they may
see a referral, and whose person it is. The referral service checks and audits that read."""

import uuid

import httpx

from cmhl_placement.application.ports import ReferralFacts, ReferralsUnavailable


class ReferralServiceClient:
    def __init__(self, client: httpx.AsyncClient, base_url: str) -> None:
        self._client = client
        self._base = base_url.rstrip("/")

    async def visible_to(self, referral_id: uuid.UUID, credentials: str) -> ReferralFacts | None:
        try:
            answer = await self._client.get(
                f"{self._base}/api/v1/referrals/{referral_id}",
                headers={"Authorization": f"Bearer {credentials}"},
            )
        except httpx.HTTPError as exc:
            raise ReferralsUnavailable(type(exc).__name__) from exc
        if answer.status_code in (403, 404):
            return None
        if answer.status_code != 200:
            raise ReferralsUnavailable(f"the referral service answered {answer.status_code}")
        referral = answer.json()
        return ReferralFacts(
            person_id=referral["person_id"],
            liaison_id=referral["liaison_id"],
            cmhc_id=referral["cmhc_id"],
            # The referral service names the statuses a referral may move to: none once closed.
            closed=not referral["allowed_transitions"],
        )
