"""The POST-approved courses liaisons give (DOMAIN.md), with their POST category and hours."""

from dataclasses import dataclass
from enum import StrEnum


class PostCategory(StrEnum):
    """Missouri POST continuing-education categories."""

    LEGAL = "legal"
    TECHNICAL = "technical"
    INTERPERSONAL = "interpersonal"
    SKILLS = "skills"
    RACIAL_PROFILING = "racial_profiling"


@dataclass(frozen=True)
class Course:
    """A course liaisons may give. Retired courses stay in the catalog so that sessions held on
    them keep their title, category and hours; they only stop accepting new sessions."""

    course_id: str
    title: str
    category: PostCategory
    credit_hours: float
    retired: bool = False


POST_COURSES: tuple[Course, ...] = (
    Course("umh", "Understanding Mental Health", PostCategory.INTERPERSONAL, 4),
    Course("umh-youth", "Understanding Mental Health in Youth", PostCategory.INTERPERSONAL, 4),
    Course(
        "co-occurring",
        "Understanding Co-Occurring Conditions (Mental Health & Substance Use Disorders)",
        PostCategory.INTERPERSONAL,
        2,
    ),
    Course(
        "suicide-warning-signs",
        "Recognizing Warning Signs of Suicide and Self-Harm",
        PostCategory.INTERPERSONAL,
        2,
    ),
    Course(
        "civil-detention",
        "Understanding Civil Involuntary Detention (96-Hour Holds) & Hospital Procedures",
        PostCategory.LEGAL,
        2,
    ),
    Course(
        "de-escalation",
        "De-Escalation: Responding to Individuals in a Mental Health Crisis",
        PostCategory.SKILLS,
        4,
    ),
    Course(
        "resiliency", "Resiliency and Battlemind: How Officers Cope", PostCategory.INTERPERSONAL, 2
    ),
    Course(
        "trauma-ptsd",
        "Recognizing Trauma, Stress Responses, and PTSD",
        PostCategory.INTERPERSONAL,
        2,
    ),
)

COURSES_BY_ID = {course.course_id: course for course in POST_COURSES}

# Missouri POST: 24 hours of continuing education per officer per year (DOMAIN.md).
ANNUAL_POST_HOURS = 24
