"""Field vocabularies shared by every event, taken from DOMAIN.md and the BSeR/FHIR lifecycle."""

from enum import StrEnum


class ReferralSource(StrEnum):
    """Who referred the person; liaisons take referrals only from law enforcement and courts."""

    MUNICIPAL_POLICE = "municipal_police"
    SHERIFF = "sheriff"
    COURT = "court"
    OTHER = "other"


class CourtType(StrEnum):
    MENTAL_HEALTH = "mental_health"
    TREATMENT_DRUG = "treatment_drug"
    VETERANS = "veterans"
    CIRCUIT = "circuit"
    MUNICIPAL = "municipal"
    JUVENILE = "juvenile"


class PresentingNeed(StrEnum):
    THREAT_TO_SELF_OR_OTHERS = "threat_to_self_or_others"
    BEHAVIORAL_NEEDS = "behavioral_needs"
    SUBSTANCE_USE = "substance_use"
    OTHER = "other"


class PersonLocation(StrEnum):
    """Where the liaison meets the person: contacts happen in detention, hospital or community."""

    COMMUNITY = "community"
    DETENTION = "detention"
    HOSPITAL_ER = "hospital_er"


class ContactPlace(StrEnum):
    DETENTION = "detention"
    HOSPITAL_ER = "hospital_er"
    COMMUNITY = "community"
    PHONE = "phone"


class ReferralStatus(StrEnum):
    """The referral lifecycle of DOMAIN.md (FHIR Task status / BSeR business status in comments)."""

    RECEIVED = "received"  # requested, 2.0
    ACCEPTED = "accepted"  # accepted, 3.0
    DECLINED = "declined"  # rejected, 4.0
    UNABLE_TO_CONTACT = "unable_to_contact"  # on-hold
    APPOINTMENT_SCHEDULED = "appointment_scheduled"  # in-progress, 5.1.1
    NO_SHOW = "no_show"  # 5.1.2
    ATTENDED = "attended"  # 5.1.4
    CONNECTED_TO_TREATMENT = "connected_to_treatment"  # completed, 7.0
    DECLINED_BY_PERSON = "declined_by_person"  # cancelled, 6.0
    REFERRED_ELSEWHERE = "referred_elsewhere"
    LOST_TO_FOLLOW_UP = "lost_to_follow_up"


class FeedbackStatus(StrEnum):
    """The coarse status a referring agency may learn under a consent: never the detail."""

    RECEIVED = "received"
    IN_PROGRESS = "in_progress"
    CONNECTED_TO_TREATMENT = "connected_to_treatment"
    CLOSED = "closed"


class FollowUpOutcome(StrEnum):
    REACHED = "reached"
    UNABLE_TO_CONTACT = "unable_to_contact"
    ENGAGED_IN_TREATMENT = "engaged_in_treatment"
    APPOINTMENT_KEPT = "appointment_kept"
    APPOINTMENT_MISSED = "appointment_missed"
    HOSPITALIZED = "hospitalized"
    ARRESTED_OR_JAILED = "arrested_or_jailed"
    DECLINED_SERVICES = "declined_services"
    MOVED_AWAY = "moved_away"
    COURT_MANDATED_TREATMENT = "court_mandated_treatment"
    HOUSING_STABLE = "housing_stable"
    HOUSING_UNSTABLE = "housing_unstable"
