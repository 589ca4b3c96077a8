"""apply's executor table: one executor for every (op, kind) the planner can emit, checked at import."""

from __future__ import annotations

import pytest

from reconciler.apply import scheduler as apply
from reconciler.core.state import Kind
from reconciler.planning.actions import PLANNED, Op


def test_every_planned_pair_has_exactly_one_executor():
    assert set(apply.EXECUTORS) == PLANNED


def test_the_import_check_names_a_missing_executor(monkeypatch):
    table = dict(apply.EXECUTORS)
    del table[(Op.REPOINT, Kind.WORKFLOW)]
    monkeypatch.setattr(apply, "EXECUTORS", table)
    with pytest.raises(TypeError, match="no executor for \\['repoint workflow'\\]"):
        apply._check_executors()


def test_the_import_check_names_an_executor_for_a_pair_never_planned(monkeypatch):
    table = {**apply.EXECUTORS, (Op.DELETE, Kind.CONCEPT): apply.EXECUTORS[(Op.CREATE, Kind.CONCEPT)]}
    monkeypatch.setattr(apply, "EXECUTORS", table)
    with pytest.raises(TypeError, match="never planned: \\['delete concept'\\]"):
        apply._check_executors()


def test_a_pair_cannot_get_two_executors():
    with pytest.raises(TypeError, match="two executors for create app"):
        apply.executes((Op.CREATE, Kind.APP))(lambda applier, actions: None)
    assert apply.EXECUTORS[(Op.CREATE, Kind.APP)].run is apply.Applier._create_app


def test_batched_executors_are_the_list_taking_api_calls():
    batched = {pair for pair, ex in apply.EXECUTORS.items() if ex.batched}
    assert batched == {(Op.CREATE, Kind.CONCEPT), (Op.UPDATE, Kind.CONCEPT), (Op.CREATE, Kind.RELATION),
                       (Op.DELETE, Kind.RELATION), (Op.CREATE, Kind.WORKFLOW)}
