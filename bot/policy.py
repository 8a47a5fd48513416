"""Who may see and do what: the one place that decides visibility and permissions.

Two questions, kept apart (DESIGN.md "Roles, groups and visibility"):
- may_see: whether a person may know that a group exists. It is then listed to them
  (`groups`), with its name and moderators; `join`, `add` and the like can name it.
- may_read: whether they may read what is in it: posts, comments, files, members,
  search hits, feeds, deliveries and digests. Open groups: every internal person; closed
  and secret groups: members only; admins: all; externals: the groups that admit them and
  that they are members of.

Every read path filters through `readable_groups` / `can_read` / `item`, every write asks
one of the `require_*` checks. A group a person may not see is reported as "not found",
never as "forbidden", so that its existence does not leak; a closed group they see but
may not read is answered with what it is, who moderates it and how to ask to join.
"""

from __future__ import annotations

from functools import cached_property

from bot.errors import UserError
from store.models import Group, Item, Membership, Person, Role, Visibility
from store.uow import UnitOfWork


def may_see(person: Person, group: Group, membership: Membership | None) -> bool:
    """Whether the person may know the group exists (it is listed to them); not whether
    they may read it: that is may_read."""
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


def may_read(person: Person, group: Group, membership: Membership | None) -> bool:
    """Whether the person may read the group's content (posts, comments, files, members,
    search hits, feeds): open groups are read by internal people, closed and secret ones
    by their members; admins read all; externals their groups that admit externals."""
    if not person.active:
        return False
    role = person.role_enum
    if role is Role.ADMIN:
        return True
    if role.is_external:
        return membership is not None and group.admits_externals
    if group.visibility == Visibility.OPEN:
        return True
    return membership is not None


def is_gatekeeper(person: Person) -> bool:
    """Whether the person decides on proposals for public outlets (admins do too)."""
    return person.active and person.role_enum in (Role.GATEKEEPER, Role.ADMIN)


def may_moderate(person: Person) -> bool:
    """Whether the person can be a group's moderator at all (guests and partners cannot)."""
    return person.active and not person.role_enum.is_external


def may_receive(person: Person, group: Group, membership: Membership | None) -> bool:
    """Whether a member's copy of a group post may go to them (they may have left)."""
    return membership is not None and may_read(person, group, membership)


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
        """The groups listed to this person (may_see), by slug: not all of them readable."""
        rows = self.uow.groups.all_for(self.person.id)
        if "_memberships" not in self.__dict__:
            self.__dict__["_memberships"] = {g.id: m for g, m in rows if m is not None}
        joined = self._memberships
        return [g for g, _ in rows if may_see(self.person, g, joined.get(g.id))]

    def readable_groups(self) -> list[Group]:
        """The groups whose content this person may read (may_read), by slug."""
        return [g for g in self.visible_groups() if self.can_read(g)]

    def readable_group_ids(self) -> frozenset[int]:
        return frozenset(g.id for g in self.readable_groups())

    def can_see(self, group: Group) -> bool:
        """Whether the group is listed to this person (see can_read for its content)."""
        return may_see(self.person, group, self.membership(group))

    def can_read(self, group: Group) -> bool:
        return may_read(self.person, group, self.membership(group))

    def group(self, slug: str) -> Group:
        """The group named `slug`, if it is listed to this person (for join, add, ...)."""
        found = self.uow.groups.by_slug_for(slug.removeprefix("#"), self.person.id)
        if found is None and (titled := self.uow.groups.by_title(slug)) is not None:
            found = self.uow.groups.by_slug_for(titled.slug, self.person.id)
        if found is not None:
            self._membership_of[found[0].id] = found[1]
        if found is None or not self.can_see(found[0]):
            raise UserError("error.group_not_found", group=slug)
        return found[0]

    def readable_group(self, slug: str) -> Group:
        """The group named `slug`, if this person may read it (items, members, feeds)."""
        group = self.group(slug)
        self.require_read(group)
        return group

    def item(self, item_id: int) -> tuple[Item, Group]:
        """A post this person may read, with its group. A post of a closed group they
        are not in is answered as such; one of a group they may not see is not found."""
        item = self.uow.items.get(item_id)
        group = self.uow.groups.get(item.group_id) if item is not None else None
        if item is None or group is None or not self.can_see(group):
            raise UserError("error.item_not_found", item=f"#{item_id}")
        self.require_read(group)
        return item, group

    def require_read(self, group: Group) -> None:
        """Refuses a group listed to this person that they may not read (a closed group
        they are not in), saying who moderates it and how to ask to join."""
        if self.can_read(group):
            return
        deciders = self.uow.join_requests.deciders(group.id)
        raise UserError(
            "error.members_only",
            group=group.name,
            slug=group.slug,
            moderators=", ".join("@" + p.handle for p in deciders) or "-",
        )

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
            self.require_read(group)  # a closed group: members only, and how to ask
            raise UserError("error.join_first", group=group.name, slug=group.slug)

    def may_join(self, group: Group) -> bool:
        """Whether `join` lets this person in at once (else: a closed group's request)."""
        return (
            not self.is_external
            and self.can_see(group)
            and (group.visibility == Visibility.OPEN or self.is_admin)
        )

    def may_ask_to_join(self, group: Group) -> bool:
        """Whether this person may ask the moderators to let them into the group: a
        closed group, asked by an internal person (externals join by invite only)."""
        return (
            not self.is_external
            and group.visibility == Visibility.CLOSED
            and self.can_see(group)
            and self.membership(group) is None
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
