"""Claims are leases: a live lease cannot be taken, an expired one can, and a worker whose claim
is taken over stops training, records nothing and logs why."""

from __future__ import annotations

import pytest
from lab_util import tiny_sweep

from mlplab.lab import worker as worker_mod
from mlplab.lab.plan import prepare
from mlplab.lab.store import Store
from mlplab.lab.sweep import as_sweep_spec
from mlplab.lab.worker import ROW_COLUMNS, Worker
from mlplab.train.checkpoint import latest_checkpoint
from mlplab.train.trainer import Trainer


@pytest.fixture
def one_trial(tmp_path):
    """A store holding a planned one-trial sweep (50 epochs, 1 s lease) and its worker."""
    spec = as_sweep_spec(tiny_sweep(name="steal", axes={"model.block": ["standard"]},
                                    budget={"params": [3e3]}, seeds=[0], train={"epochs": 50},
                                    execution={"lease_seconds": 1.0}))
    store = Store(tmp_path / "lab.sqlite")
    prepare(store, spec)
    yield store, Worker(store, "steal", tmp_path)
    store.close()


def test_a_live_lease_cannot_be_taken_an_expired_one_can(one_trial):
    store, worker = one_trial
    (row,) = store.trials(worker.sweep_id, *ROW_COLUMNS)
    token = store.try_claim(row, worker.me, 60)
    (held,) = store.trials(worker.sweep_id, *ROW_COLUMNS)
    # another worker that (wrongly) thinks the lease ran out gets nothing
    assert store.try_claim(held, "other:2", 60) is None
    assert store.update_claimed(held["id"], token, lease_until=store.now() - 1)
    (expired,) = store.trials(worker.sweep_id, *ROW_COLUMNS)
    assert store.try_claim(expired, "other:2", 60) is not None
    assert [e["kind"] for e in store.events(worker.sweep_id)] == ["claimed", "reclaimed"]


def test_a_worker_whose_claim_is_taken_over_stops_and_records_nothing(one_trial, monkeypatch):
    store, worker = one_trial
    beats: list[worker_mod.Heartbeat] = []

    class Spy(worker_mod.Heartbeat):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            beats.append(self)

    train_epoch = Trainer._train_epoch

    def epoch(self):
        if self.state.epoch == 2:  # during the third epoch another worker takes the trial over
            beat = beats[-1]
            for _ in range(100):  # expire the lease and reclaim it (again if a beat came first)
                store.update_claimed(beat.trial_id, beat.token, lease_until=store.now() - 1)
                (seen,) = store.trials(worker.sweep_id, *ROW_COLUMNS)
                if store.try_claim(seen, "thief:1", 60) is not None:
                    break
            assert beat.lost.wait(30)  # the heartbeat notices
        return train_epoch(self)

    monkeypatch.setattr(worker_mod, "Heartbeat", Spy)
    monkeypatch.setattr(Trainer, "_train_epoch", epoch)
    (row,) = store.trials(worker.sweep_id, *ROW_COLUMNS)
    token = store.try_claim(row, worker.me, worker.lease)
    assert worker.execute(row, token) is False, store.trials(worker.sweep_id)[0]["error"]
    (after,) = store.trials(worker.sweep_id)
    assert after["status"] == "running" and after["worker"] == "thief:1"
    assert after["metrics"] is None and after["finished_at"] is None
    events = store.events(worker.sweep_id)
    assert [e["kind"] for e in events] == ["claimed", "reclaimed", "lost"]
    assert events[-1]["detail"] == ("training was stopped after epoch 3: the claim had been "
                                    "taken over by thief:1; no result recorded")
    # it stopped at once and wrote nothing after the takeover (no epoch-3 checkpoint, no result)
    run_dir = worker.run_dir(row)
    assert latest_checkpoint(run_dir).name == "epoch-000002"
    assert not (run_dir / "metrics.json").exists()
