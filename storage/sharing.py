"""Who may see and who may change a shared object (a report, a dashboard): one rule, as Python for one
row and as SQL for lists, so the two never disagree.

Seen by: admins, the owner, the principals (``shared_with``) and roles (``shared_with_roles``) it is
shared with, and everyone when it is public. Changed by: the owner and admins.
"""

from __future__ import annotations

from collections.abc import Collection

from core.access import Principal, Role

# $1: the caller is an admin, $2: its principal id, $3: its role (``visible_args``).
VISIBLE_SQL = (
    "($1::bool OR owner_key_id = $2 OR is_public OR shared_with @> ARRAY[$2::text] "
    "OR shared_with_roles @> ARRAY[$3::text])"
)


def visible_args(principal: Principal) -> tuple[bool, str, str]:
    return principal.role is Role.ADMIN, principal.key_id, principal.role.value


def visible(
    principal: Principal,
    owner_key_id: str,
    is_public: bool,
    shared_with: Collection[str],
    shared_with_roles: Collection[Role],
) -> bool:
    """The same rule as ``VISIBLE_SQL``."""
    return (
        principal.role is Role.ADMIN
        or principal.key_id == owner_key_id
        or is_public
        or principal.key_id in shared_with
        or principal.role in shared_with_roles
    )


def managed(principal: Principal, owner_key_id: str) -> bool:
    return principal.role is Role.ADMIN or principal.key_id == owner_key_id
