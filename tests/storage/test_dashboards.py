"""storage/dashboards.py against the real PostgreSQL: one fresh, migrated database for the module, emptied
before each test. Versions keep the whole dashboard; concurrent editors never interleave; prebuilt
dashboards are made once, by one of any number of starting replicas, and stay deleted."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import pytest

from core.access import Principal, Role
from core.errors import Conflict, NotFound
from storage.dashboards import DashboardRepository, NewDashboard, NewWidget
from storage.metadata import MetadataStore

ALICE = Principal(key_id="key_alice", name="alice", role=Role.ANALYST)
BOB = Principal(key_id="key_bob", name="bob", role=Role.VIEWER)


@pytest.fixture
async def pool(migrated: MetadataStore) -> asyncpg.Pool:
    await migrated.pool.execute("TRUNCATE dashboards, prebuilt_dashboards CASCADE")
    return migrated.pool


@pytest.fixture
def repo(pool: asyncpg.Pool) -> DashboardRepository:
    return DashboardRepository(pool)


def widget(title: str, x: int = 0, y: int = 0) -> NewWidget:
    return NewWidget(
        widget_type="time_series",
        title=title,
        config={"metrics": ["views"]},
        layout={"x": x, "y": y, "w": 6, "h": 4},
    )


async def test_a_dashboard_keeps_every_version_and_restores_one(repo: DashboardRepository) -> None:
    made = await repo.create(ALICE, NewDashboard(name="Board", widgets=(widget("b", 6, 0), widget("a", 0, 0))))
    assert made.version == 1 and made.owner_role is Role.ANALYST
    # Ordered top to bottom, left to right.
    assert [w.title for w in made.widgets] == ["a", "b"]
    added = await repo.add_widget(made.id, widget("c", 0, 4), saved_by="alice")
    changed = await repo.update(made.id, {"name": "Renamed", "theme": "dark"}, saved_by="alice", expected_version=2)
    assert changed.version == 3 and changed.name == "Renamed" and changed.theme == "dark"
    await repo.delete_widget(made.id, added.id, saved_by="alice")
    versions, total = await repo.versions(made.id, limit=10, offset=0)
    assert total == 4 and [v.version for v in versions] == [4, 3, 2, 1]
    assert [len(v.snapshot["widgets"]) for v in versions] == [2, 3, 3, 2]
    second = await repo.saved_version(made.id, 2)
    assert second is not None
    restored = await repo.restore(made.id, second, saved_by="bob")
    assert restored.version == 5 and restored.name == "Board" and restored.theme == "light"
    assert sorted(w.title for w in restored.widgets) == ["a", "b", "c"]
    # The restored widgets keep their ids: links to a widget survive a restore.
    assert {w.id for w in restored.widgets} == {w["id"] for w in second.snapshot["widgets"]}
    latest, _ = await repo.versions(made.id, limit=1, offset=0)
    assert latest[0].saved_by == "bob"


async def test_a_stale_version_is_refused_and_concurrent_editors_do_not_interleave(repo: DashboardRepository) -> None:
    made = await repo.create(ALICE, NewDashboard(name="Board"))
    results = await asyncio.gather(
        *(repo.update(made.id, {"name": f"n{i}"}, saved_by="x", expected_version=1) for i in range(5)),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, BaseException))
    # Without a version, every change applies, one after the other, each a version of its own.
    await asyncio.gather(*(repo.add_widget(made.id, widget(f"w{i}"), saved_by="x") for i in range(5)))
    final = await repo.get(made.id)
    assert final is not None and final.version == 7 and len(final.widgets) == 5
    _, total = await repo.versions(made.id, limit=50, offset=0)
    assert total == 7


async def test_replacing_the_widgets_keeps_the_ids_given(repo: DashboardRepository) -> None:
    made = await repo.create(ALICE, NewDashboard(name="Board", widgets=(widget("a"), widget("b", 6))))
    keep = made.widgets[0]
    moved = NewWidget(keep.widget_type, "a moved", keep.config, {"x": 0, "y": 8, "w": 12, "h": 2}, id=keep.id)
    changed = await repo.update(made.id, {}, saved_by="x", widgets=(moved, widget("new")))
    assert len(changed.widgets) == 2
    kept = changed.widget(keep.id)
    assert kept is not None and kept.title == "a moved" and kept.layout["w"] == 12
    assert made.widgets[1].id not in {w.id for w in changed.widgets}


async def test_visibility_and_lists(repo: DashboardRepository) -> None:
    private = await repo.create(ALICE, NewDashboard(name="Private"))
    by_role = await repo.create(ALICE, NewDashboard(name="Viewers", shared_with_roles=(Role.VIEWER,)))
    by_key = await repo.create(ALICE, NewDashboard(name="Bob", shared_with=("key_bob",)))
    public = await repo.create(ALICE, NewDashboard(name="Public", is_public=True))
    carol = Principal(key_id="key_carol", name="carol", role=Role.CONTENT_MANAGER)
    listed, total = await repo.list_visible(BOB, limit=50, offset=0)
    assert {d.id for d in listed} == {by_role.id, by_key.id, public.id} and total == 3
    listed, total = await repo.list_visible(carol, limit=50, offset=0)
    assert {d.id for d in listed} == {public.id} and total == 1
    assert not private.visible_to(BOB) and by_role.visible_to(BOB) and by_key.visible_to(BOB)
    assert private.managed_by(ALICE) and not by_key.managed_by(BOB)
    admin = Principal(key_id="key_root", name="root", role=Role.ADMIN)
    assert (await repo.list_visible(admin, limit=50, offset=0))[1] == 4


async def test_prebuilt_dashboards_are_made_once_and_stay_deleted(repo: DashboardRepository) -> None:
    new = NewDashboard(name="Executive", prebuilt="executive", is_public=True, widgets=(widget("a"),))
    made = await asyncio.gather(*(repo.create_prebuilt(ALICE, new) for _ in range(6)))
    assert sum(d is not None for d in made) == 1
    first = next(d for d in made if d is not None)
    listed, _ = await repo.list_visible(BOB, limit=50, offset=0)
    assert [d.prebuilt for d in listed] == ["executive"]
    await repo.delete(first.id)
    assert await repo.create_prebuilt(ALICE, new) is None
    assert (await repo.list_visible(BOB, limit=50, offset=0))[1] == 0


async def test_missing_ids_and_refresh_time(repo: DashboardRepository) -> None:
    with pytest.raises(NotFound):
        await repo.update("dsh_missing", {"name": "x"}, saved_by="x")
    with pytest.raises(NotFound):
        await repo.add_widget("x" * 500, widget("a"), saved_by="x")
    assert await repo.get("\x00") is None
    made = await repo.create(ALICE, NewDashboard(name="Board", widgets=(widget("a"),)))
    with pytest.raises(NotFound):
        await repo.delete_widget(made.id, "wdg_missing", saved_by="x")
    later = datetime(2030, 1, 1, tzinfo=UTC)
    await repo.mark_refreshed(made.id, later)
    await repo.mark_refreshed(made.id, datetime(2029, 1, 1, tzinfo=UTC))
    again = await repo.get(made.id)
    assert again is not None and again.last_refreshed_at == later
    assert (await repo.dashboard_of_widget(made.widgets[0].id)).id == made.id  # type: ignore[union-attr]


async def test_widgets_in_one_place_keep_the_order_they_were_given_in(repo: DashboardRepository) -> None:
    titles = [f"w{i}" for i in range(12)]
    made = await repo.create(ALICE, NewDashboard(name="Stack", widgets=tuple(widget(t) for t in titles)))
    assert [w.title for w in made.widgets] == titles
