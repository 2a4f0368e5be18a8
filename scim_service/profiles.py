"""IdP profiles: named sets of tolerances for the ways real identity providers deviate from the RFC.

A :class:`Profile` lists, by name, the :class:`Tolerance` values it allows. ``generic`` allows none: it is
strict RFC 7643/7644, and a request that needs a tolerance gets the RFC's error. Each IdP profile allows
exactly what that IdP is known to send. ``auto`` is not a profile but a choice made per request:
:func:`detect` picks ``okta`` or ``entra`` from the User-Agent (or Entra's ``aadOptscim062020`` flag)
where that is reliable, and otherwise the ``auto`` profile: the union of every tolerance, since each one
only accepts a request the RFC would refuse and never changes what an RFC-valid request means (a new
organization must provision from any IdP without configuration; ``generic`` is the strict choice an
operator makes by setting it).

The code that parses requests (:mod:`scim_service.patch`, :mod:`scim_service.schemas.resources`) takes an
:class:`ActiveProfile` argument and asks :meth:`ActiveProfile.allows` before applying a tolerance; the
call records the tolerance that fired and logs it on the ``scim_service.profiles`` logger, so an operator
can see which quirk a request needed (the provisioning log stores them too). Nothing here is global: the
blueprint makes one :class:`ActiveProfile` per request and passes it down.
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "AUTO",
    "AUTO_PROFILE",
    "PROFILES",
    "PROFILE_CHOICES",
    "ActiveProfile",
    "Profile",
    "Tolerance",
    "detect",
    "get_profile",
    "resolve",
    "strict",
]

log = logging.getLogger("scim_service.profiles")

AUTO = "auto"


class Tolerance(enum.Enum):
    """One deviation from RFC 7643/7644 that a profile may accept; each member's docstring says what."""

    def __new__(cls, value: str, doc: str) -> Tolerance:
        member = object.__new__(cls)
        member._value_ = value
        member.__doc__ = doc
        return member

    CAPITALISED_OPS = (
        "capitalised_ops",
        'A PATCH operation\'s ``op`` in any case ("Add", "Replace", "Remove"), as Entra ID sends without '
        'aadOptscim062020. RFC 7644 §3.5.2 names the values "add", "remove" and "replace"; strictly, other '
        "spellings are invalidSyntax.",
    )
    STRING_BOOLEANS = (
        "string_booleans",
        'A boolean attribute given as the string "True"/"False" (any case), as Entra ID sends ``active`` '
        "without aadOptscim062020, in PATCH values and in POST/PUT bodies. RFC 7643 §2.3.2 wants a JSON "
        "boolean; strictly, a string is invalidValue.",
    )
    PATHLESS_QUALIFIED_KEYS = (
        "pathless_qualified_keys",
        "A PATCH ``add``/``replace`` without a path whose value map has dotted keys (``name.givenName``), "
        "URN-qualified keys (``urn:...:enterprise:2.0:User:department``) or value-path keys "
        '(``emails[type eq "work"].value``), as Entra ID sends. RFC 7644 §3.5.2.1 wants the keys of the '
        "resource's own JSON form (attribute names, or an extension URN holding an object); strictly, "
        "other keys are invalidValue.",
    )
    VALUE_PATH_CREATES = (
        "value_path_creates",
        '``add``/``replace`` on ``emails[type eq "work"].value`` (a filter of ``eq`` tests joined by '
        '``and``) that matches no element creates ``{"type": "work", "value": ...}``. RFC 7644 §3.5.2.3 '
        "says a value filter that matches nothing is noTarget.",
    )
    REMOVE_WITH_VALUE = (
        "remove_with_value",
        '``remove`` on a multi-valued attribute with a value list (``{"op": "remove", "path": "members", '
        '"value": [{"value": "id"}]}``) removes exactly the listed values, never the whole attribute. '
        "RFC 7644 §3.5.2.2 gives remove no value (a path without a filter removes every value); strictly, "
        'a remove with a value is invalidSyntax, with a hint to use ``members[value eq "id"]``.',
    )
    MANAGER_BARE_STRING = (
        "manager_bare_string",
        "A complex attribute given as a bare string means its ``value`` sub-attribute, as Entra ID sends "
        '``manager`` (``"value": "<manager id>"``). RFC 7643 §4.3 makes manager complex; strictly, a '
        "string is invalidValue.",
    )
    UNKNOWN_SCHEMA_IGNORED = (
        "unknown_schema_ignored",
        "A schema URI in ``schemas`` (or an extension object keyed by one) that this server does not know is "
        "ignored with a log line, as Entra ID's ADSCIM group schema or an IdP's own custom extension. "
        "Strictly (RFC 7643 §3), the resource names a schema the server does not offer: invalidValue.",
    )
    UNKNOWN_ATTRIBUTE_IGNORED = (
        "unknown_attribute_ignored",
        "An attribute (or sub-attribute) this server does not define is ignored with a log line, in POST/PUT "
        "bodies and in the value map of a path-less PATCH. Strictly it is invalidValue (RFC 7643 §2 defines "
        "a resource by its schemas' attributes), so a misspelt attribute is never lost silently (a PATCH "
        "path naming an unknown attribute is invalidPath in every profile).",
    )

    VALUE_PATH_FILTER_SUB = (
        "value_path_filter_sub",
        'A filter comparing a sub-attribute after a value filter, ``emails[type eq "work"].value eq "x"``, as '
        "Entra ID sends when its matching attribute is the work email; answered as "
        '``emails[type eq "work" and value eq "x"]``. RFC 7644 §3.4.2.2\'s grammar has no such form; '
        "strictly, it is invalidFilter.",
    )

    @property
    def summary(self) -> str:
        """The tolerance's description (its docstring)."""
        return self.__doc__ or ""


_ALL = frozenset(Tolerance)


@dataclass(frozen=True)
class Profile:
    """A named IdP profile: the tolerances it allows and how it answers a Group PATCH.

    ``group_patch_no_content``: a Group PATCH without ``attributes``/``excludedAttributes`` answers
    204 No Content (the IdP accepts it, and the members are never read); otherwise 200 with the group
    (RFC 7644 §3.5.2's first option). ``user_patch_no_content``: the same for a User PATCH (Entra's
    own validator expects 204; other clients read the user back from the 200). ``user_agents`` are
    regular expressions (case-insensitive) that identify the IdP reliably for ``auto``; empty when its
    User-Agent is not a reliable sign.
    """

    name: str
    title: str
    description: str
    tolerances: frozenset[Tolerance] = frozenset()
    group_patch_no_content: bool = False
    user_patch_no_content: bool = False
    user_agents: tuple[str, ...] = ()

    def allows_tolerance(self, tolerance: Tolerance) -> bool:
        """Whether this profile accepts ``tolerance`` (without recording anything)."""
        return tolerance in self.tolerances


GENERIC = Profile(
    name="generic",
    title="Generic (strict RFC 7643/7644)",
    description="Every request must follow the RFCs; a deviation gets the RFC's error. A Group PATCH "
    "answers 200 with the group.",
)

OKTA = Profile(
    name="okta",
    title="Okta",
    description="Okta's SCIM 2.0 client (User-Agent 'Okta SCIM Client'). Okta follows the RFC closely; it "
    "sends custom attributes under its own schema URNs and accepts 204 for a Group PATCH.",
    tolerances=frozenset(
        {
            Tolerance.UNKNOWN_SCHEMA_IGNORED,
            Tolerance.UNKNOWN_ATTRIBUTE_IGNORED,
            Tolerance.VALUE_PATH_CREATES,
        }
    ),
    group_patch_no_content=True,
    user_agents=(r"\bokta scim client\b",),
)

ENTRA = Profile(
    name="entra",
    title="Microsoft Entra ID",
    description="Microsoft Entra ID provisioning (User-Agent 'Microsoft Azure AD SCIM provisioning', or the "
    "aadOptscim062020 flag on the tenant URL). Covers Entra with and without aadOptscim062020: without it "
    "Entra capitalises ops, sends booleans as strings and removes members with a value list; with it those "
    "three are RFC-shaped but path-less PATCH with dotted and value-path keys remains. Accepts 204 for a "
    "Group PATCH.",
    tolerances=_ALL,
    group_patch_no_content=True,
    user_patch_no_content=True,
    user_agents=(r"\bazure ad scim\b", r"\bmicrosoft azure ad\b", r"\bentra id scim\b"),
)

ONELOGIN = Profile(
    name="onelogin",
    title="OneLogin",
    description="OneLogin's SCIM provisioning. It removes group members with a value list and may send "
    "attributes and schemas of its own; it expects the group back from a Group PATCH.",
    tolerances=frozenset(
        {Tolerance.REMOVE_WITH_VALUE, Tolerance.UNKNOWN_SCHEMA_IGNORED, Tolerance.UNKNOWN_ATTRIBUTE_IGNORED}
    ),
)

JUMPCLOUD = Profile(
    name="jumpcloud",
    title="JumpCloud",
    description="JumpCloud's SCIM integration. It may send attributes and schemas of its own and set "
    "typed values such as the work email through a value filter on a user that has none yet.",
    tolerances=frozenset(
        {Tolerance.UNKNOWN_SCHEMA_IGNORED, Tolerance.UNKNOWN_ATTRIBUTE_IGNORED, Tolerance.VALUE_PATH_CREATES}
    ),
)

GOOGLE = Profile(
    name="google",
    title="Google Workspace",
    description="Google Workspace automatic provisioning. It follows the RFC for operations but may send "
    "attributes and schemas this server does not define.",
    tolerances=frozenset({Tolerance.UNKNOWN_SCHEMA_IGNORED, Tolerance.UNKNOWN_ATTRIBUTE_IGNORED}),
)

AUTO_PROFILE = Profile(
    name=AUTO,
    title="Automatic (client not recognised)",
    description="What an organization on the default ``auto`` setting applies to a client it cannot name: "
    "every tolerance, because none of them changes the meaning of an RFC-valid request (each only accepts "
    "what the RFC would refuse), so any real IdP provisions without configuration. A Group PATCH answers "
    "204 (its cost follows the change, never the group's size); a User PATCH answers 200 with the user.",
    tolerances=_ALL,
    group_patch_no_content=True,
)
"""The profile ``auto`` applies when :func:`detect` cannot name the IdP (not settable by name)."""

PROFILES: Mapping[str, Profile] = {p.name: p for p in (GENERIC, OKTA, ENTRA, ONELOGIN, JUMPCLOUD, GOOGLE)}
"""Every profile by name."""

PROFILE_CHOICES: tuple[str, ...] = (AUTO, *PROFILES)
"""What an organization's profile setting may be: ``auto`` or a profile name."""

# Entra's compatibility flag, appended to the tenant URL: its presence says the caller is Entra.
_ENTRA_FLAG = "aadoptscim062020"


def get_profile(name: str) -> Profile:
    """The profile called ``name`` (case-insensitive); ``ValueError`` naming the choices otherwise."""
    found = PROFILES.get(str(name).strip().lower())
    if found is None:
        raise ValueError(f"unknown IdP profile {name!r}; choose one of {', '.join(PROFILES)}")
    return found


def detect(user_agent: str | None, query_keys: tuple[str, ...] = ()) -> Profile:
    """The profile ``auto`` picks for a request: by User-Agent where reliable, else :data:`AUTO_PROFILE`.

    ``query_keys`` are the request's query parameter names: Entra's ``aadOptscim062020`` flag names Entra.
    """
    if any(key.lower() == _ENTRA_FLAG for key in query_keys):
        return ENTRA
    if user_agent:
        for profile in PROFILES.values():
            if any(re.search(pattern, user_agent, re.IGNORECASE) for pattern in profile.user_agents):
                return profile
    return AUTO_PROFILE


def resolve(setting: str | None, user_agent: str | None, query_keys: tuple[str, ...] = ()) -> Profile:
    """The profile of a request: the organization's ``setting``, or detection when it is ``auto``/unset."""
    if setting is None or setting.strip().lower() == AUTO:
        return detect(user_agent, query_keys)
    return get_profile(setting)


@dataclass
class ActiveProfile:
    """The profile applied to one request, and the tolerances that fired while serving it.

    ``label`` names the request in log lines (``PATCH /scim/v2/Users/42``). Make a new one per request;
    never share one between requests.
    """

    profile: Profile = GENERIC
    label: str = ""
    fired: dict[Tolerance, str] = field(default_factory=dict)
    refused: dict[Tolerance, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The profile's name."""
        return self.profile.name

    def allows(self, tolerance: Tolerance, detail: str) -> bool:
        """Whether the profile allows ``tolerance``; when it does, record it as fired (with ``detail``,
        what in the request needed it) and log it. Each tolerance is logged once per request."""
        if tolerance not in self.profile.tolerances:
            # Kept so that a 400 can say which profile would have accepted the request (refusal_hint).
            self.refused.setdefault(tolerance, detail)
            return False
        if tolerance not in self.fired:
            self.fired[tolerance] = detail
            log.info(
                "%sprofile %s applied tolerance %s: %s",
                f"{self.label}: " if self.label else "",
                self.profile.name,
                tolerance.value,
                detail,
            )
        return True

    def summary(self) -> str:
        """The profile and the fired tolerances as stored in the provisioning log: ``entra`` when none
        fired, ``entra: name, name`` otherwise (so the log shows the profile each request resolved to)."""
        if not self.fired:
            return self.profile.name
        return f"{self.profile.name}: " + ", ".join(t.value for t in self.fired)

    def refusal_hint(self) -> str | None:
        """For a 400: which profiles would have accepted what this profile refused, or None.

        ``"This request's profile is generic; the auto and entra profiles accept it (tolerance
        capitalised_ops: Operation 1: op 'Replace')."``
        """
        if not self.refused:
            return None
        tolerance, detail = next(iter(self.refused.items()))
        others = [AUTO] + [p.name for p in PROFILES.values() if p.allows_tolerance(tolerance)]
        return (
            f"This request's profile is {self.profile.name}; the {', '.join(others[:-1])} and {others[-1]} "
            f"profiles accept it (tolerance {tolerance.value}: {detail}); see docs/profiles.md."
        )


def strict() -> ActiveProfile:
    """A fresh :class:`ActiveProfile` of ``generic``: what a caller gets that names no profile."""
    return ActiveProfile(GENERIC)
