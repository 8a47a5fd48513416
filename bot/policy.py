"""Who may see and do what: the one place that decides visibility and permissions.

Every read path (lists, items, members, deliveries, buttons) filters through
`visible_group_ids`; every write asks one of the `require_*` checks. A group a
person may not see is reported as "not found", never as "forbidden", so that its
existence does not leak.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property

from bot.errors import UserError
from store.models import Group, Item, Membership, Person, Role, Visibility
from store.uow import UnitOfWork


def may_see(person: Person, group: Group, membership: Membership | None) -> bool:
    """The visibility rule itself, for one person and one group."""
    if not person.active:
        return False
    role = person.role_enum
    if role is Role.ADMIN:
        return True
    if role.is_external:
        return membership is not None and group.admits_externals
    if group.visibility == Visibility.SECRET:
        return membership is not None
    return True


def is_gatekeeper(person: Person) -> bool:
    """Whether the person decides on proposals for public outlets (admins do too)."""
    return person.active and person.role_enum in (Role.GATEKEEPER, Role.ADMIN)


def may_moderate(person: Person) -> bool:
    """Whether the person can be a group's moderator at all (guests and partners cannot)."""
    return person.active and not person.role_enum.is_external


def may_receive(person: Person, group: Group, membership: Membership | None) -> bool:
    """Whether a member's copy of a group post may go to them (they may have left)."""
    return membership is not None and may_see(person, group, membership)


def visible_ids(
    person: Person, groups: Iterable[Group], memberships: Iterable[Membership]
) -> frozenset[int]:
    joined = {m.group_id: m for m in memberships}
    return frozenset(g.id for g in groups if may_see(person, g, joined.get(g.id)))


class Policy:
    """The rules applied to one person within one unit of work."""

    def __init__(self, uow: UnitOfWork, person: Person) -> None:
        self.uow = uow
        self.person = person
        # Memberships learnt one group at a time (with the group, in one query), until
        # all of them are needed.
        self._membership_of: dict[int, Membership | None] = {}

    @property
    def role(self) -> Role:
        return self.person.role_enum

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def is_external(self) -> bool:
        return self.role.is_external

    @cached_property
    def _memberships(self) -> dict[int, Membership]:
        return {m.group_id: m for m in self.uow.groups.memberships_of(self.person.id)}

    def membership(self, group: Group) -> Membership | None:
        if "_memberships" not in self.__dict__ and group.id in self._membership_of:
            return self._membership_of[group.id]
        return self._memberships.get(group.id)

    def forget_memberships(self) -> None:
        """After this person joined or left a group in the same unit of work."""
        self.__dict__.pop("_memberships", None)
        self._membership_of.clear()

    def visible_groups(self) -> list[Group]:
        """The groups this person may see, by slug."""
        rows = self.uow.groups.all_for(self.person.id)
        if "_memberships" not in self.__dict__:
            self.__dict__["_memberships"] = {g.id: m for g, m in rows if m is not None}
        joined = self._memberships
        return [g for g, _ in rows if may_see(self.person, g, joined.get(g.id))]

    def visible_group_ids(self) -> frozenset[int]:
        return frozenset(g.id for g in self.visible_groups())

    def can_see(self, group: Group) -> bool:
        return may_see(self.person, group, self.membership(group))

    def group(self, slug: str) -> Group:
        """The group named `slug`, if this person may see it."""
        found = self.uow.groups.by_slug_for(slug.removeprefix("#"), self.person.id)
        if found is not None:
            self._membership_of[found[0].id] = found[1]
        if found is None or not self.can_see(found[0]):
            raise UserError("error.group_not_found", group=slug)
        return found[0]

    def item(self, item_id: int) -> tuple[Item, Group]:
        item = self.uow.items.get(item_id)
        group = self.uow.groups.get(item.group_id) if item is not None else None
        if item is None or group is None or not self.can_see(group):
            raise UserError("error.item_not_found", item=f"#{item_id}")
        return item, group

    def can_moderate(self, group: Group) -> bool:
        m = self.membership(group)
        return self.is_admin or (m is not None and m.moderator and may_moderate(self.person))

    def can_post(self, group: Group) -> bool:
        return may_receive(self.person, group, self.membership(group))

    def postable_groups(self) -> list[Group]:
        return [g for g in self.uow.groups.by_ids(self._memberships) if self.can_post(g)]

    # --- requirements: raise a UserError when not allowed ---------------------------

    def require_admin(self) -> None:
        if not self.is_admin:
            raise UserError("error.admins_only")

    def require_internal(self) -> None:
        if self.is_external:
            raise UserError("error.not_for_externals")

    def require_moderator(self, group: Group) -> None:
        if not self.can_moderate(group):
            raise UserError("error.moderators_only", group=group.name)

    def require_gatekeeper(self) -> None:
        if not is_gatekeeper(self.person):
            raise UserError("error.gatekeepers_only")

    def require_feed_adder(self, group: Group) -> None:
        """Feeds are added by internal members of the group (admins anywhere they see)."""
        self.require_internal()
        if not self.is_admin and self.membership(group) is None:
            raise UserError("error.join_first", group=group.name, slug=group.slug)

    def may_remove_feed(self, added_by: int | None, group: Group) -> bool:
        return added_by == self.person.id or self.can_moderate(group)

    def require_post(self, group: Group) -> None:
        if not self.can_post(group):
            raise UserError("error.join_first", group=group.name, slug=group.slug)

    def may_join(self, group: Group) -> bool:
        return (
            not self.is_external
            and self.can_see(group)
            and (group.visibility == Visibility.OPEN or self.is_admin)
        )

    def may_invite(self, group: Group, role: Role) -> bool:
        """Externals invite nobody; invites to externals need a group that admits them."""
        if self.is_external or not self.can_see(group):
            return False
        if role.is_external and not group.admits_externals:
            return False
        if self.is_admin or self.can_moderate(group):
            return True
        return (
            not role.is_external
            and group.visibility == Visibility.OPEN
            and self.membership(group) is not None
        )

    def may_manage_invite(self, created_by: int | None) -> bool:
        return self.is_admin or created_by == self.person.id
