"""County policy: the parts of the consent rules each county agreement sets for itself."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

ADULT_AGE = 18
"""From 18 the young person alone consents; the guardians' consent no longer counts."""


class CountyPolicy(BaseModel):
    """What a county agreement decides about consent and the target group.

    Attributes:
        county: the county's name, for messages and the ledger.
        joint_custody_needs_both: under joint custody, a guardians' consent counts only when every
            current guardian gave it.
        child_consent_from_age: the age from which the child's own consent is recorded; before
            :data:`ADULT_AGE` it counts when a professional assessed the child mature enough (OSL 12:3),
            from :data:`ADULT_AGE` it alone counts.
        placed_upper_age: the last age (inclusive) at which a young person placed outside the home is in the
            target group (20 in Västmanland, 21 in Västerbotten).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    county: str = Field(min_length=1)
    joint_custody_needs_both: bool = True
    child_consent_from_age: int = Field(default=15, ge=0, le=ADULT_AGE)
    placed_upper_age: int = Field(default=20, ge=ADULT_AGE, le=25)

    def in_target_group(self, age: int, *, placed: bool) -> bool:
        """Whether a person of ``age`` is among the children and young people the agreement covers."""
        return age < ADULT_AGE or (placed and age <= self.placed_upper_age)


VASTMANLAND = CountyPolicy(county="Västmanland", placed_upper_age=20)
"""Region Västmanland's agreement: placed young people up to and including 20."""

VASTERBOTTEN = CountyPolicy(county="Västerbotten", placed_upper_age=21)
"""Region Västerbotten's agreement: placed young people up to 21 when placed before 18."""


def age_on(birth: dt.date, day: dt.date) -> int:
    """Age in whole years on ``day`` of someone born on ``birth`` (29 February counts on 1 March)."""
    years = day.year - birth.year
    if (day.month, day.day) < (birth.month, birth.day):
        years -= 1
    return years
