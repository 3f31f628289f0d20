"""``shard`` with torchrun's environment, ``worker_shard`` for DataLoader workers, and the
properties every split must have (hypothesis): disjoint, covering, balanced by size."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import resumable
from resumable import InvalidArgument, Item, shard, worker_shard

TEMPLATE = "https://h/s-{0..9}.tar"


def urls(items: list[Item]) -> list[str]:
    return [item.url for item in items]


@pytest.fixture
def no_torchrun_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    return monkeypatch


def test_rank_and_world_size_come_from_torchrun_s_environment(
    no_torchrun_env: pytest.MonkeyPatch,
) -> None:
    no_torchrun_env.setenv("RANK", "2")
    no_torchrun_env.setenv("WORLD_SIZE", "3")
    assert urls(shard(TEMPLATE)) == urls(shard(TEMPLATE, 2, 3))
    assert urls(shard(TEMPLATE)) == ["https://h/s-2.tar", "https://h/s-5.tar", "https://h/s-8.tar"]
    # An explicit argument wins over the environment.
    assert urls(shard(TEMPLATE, rank=0)) == urls(shard(TEMPLATE, 0, 3))


def test_alone_without_the_environment_a_script_gets_everything(
    no_torchrun_env: pytest.MonkeyPatch,
) -> None:
    assert urls(shard(TEMPLATE)) == [f"https://h/s-{i}.tar" for i in range(10)]


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({"RANK": "1"}, "RANK is set but WORLD_SIZE is not"),
        ({"WORLD_SIZE": "4"}, "WORLD_SIZE is set but RANK is not"),
        ({"RANK": "one", "WORLD_SIZE": "4"}, "RANK must be an integer"),
        ({"RANK": "4", "WORLD_SIZE": "4"}, r"rank must be within \[0, 4\)"),
        ({"RANK": "0", "WORLD_SIZE": "0"}, "world_size must be >= 1"),
    ],
)
def test_a_bad_environment_is_a_clear_error(
    no_torchrun_env: pytest.MonkeyPatch, env: dict[str, str], match: str
) -> None:
    for name, value in env.items():
        no_torchrun_env.setenv(name, value)
    with pytest.raises(InvalidArgument, match=match):
        shard(TEMPLATE)


def test_worker_shard_splits_a_rank_s_share_between_its_workers(
    no_torchrun_env: pytest.MonkeyPatch,
) -> None:
    every = [
        url
        for rank in range(2)
        for worker in range(3)
        for url in urls(worker_shard(TEMPLATE, rank, 2, worker=worker, num_workers=3))
    ]
    assert sorted(every) == sorted(f"https://h/s-{i}.tar" for i in range(10))
    assert len(every) == 10  # none twice
    # Outside a DataLoader worker (torch not imported here) it is the rank's whole share.
    assert "torch.utils.data" not in sys.modules
    assert urls(worker_shard(TEMPLATE, 1, 2)) == urls(shard(TEMPLATE, 1, 2))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"worker": 0}, "both worker= and num_workers="),
        ({"worker": 2, "num_workers": 2}, r"worker must be within \[0, 2\)"),
        ({"worker": 0, "num_workers": 0}, "num_workers must be >= 1"),
        ({"worker": True, "num_workers": 2}, "worker must be an integer"),
    ],
)
def test_a_bad_worker_placement_is_a_clear_error(kwargs: dict[str, int], match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        worker_shard(TEMPLATE, 0, 1, **kwargs)  # type: ignore[arg-type]


def test_inside_a_dataloader_worker_the_worker_is_read_from_torch(tmp_path: Path) -> None:
    """torch is not a dependency (nor installed for the tests): a stand-in package with the
    one function we call, ``torch.utils.data.get_worker_info``, shows it is what decides."""
    data = tmp_path / "torch" / "utils" / "data"
    data.mkdir(parents=True)
    (tmp_path / "torch" / "__init__.py").write_text("")
    (tmp_path / "torch" / "utils" / "__init__.py").write_text("")
    (data / "__init__.py").write_text(
        textwrap.dedent(
            """
            import types
            def get_worker_info():
                return types.SimpleNamespace(id=2, num_workers=4, seed=0, dataset=None)
            """
        )
    )
    script = textwrap.dedent(
        f"""
        import torch.utils.data, resumable
        print([i.url for i in resumable.worker_shard({TEMPLATE!r})])
        """
    )
    env = {**os.environ, "RANK": "0", "WORLD_SIZE": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == str(urls(shard(TEMPLATE, 2, 4)))
    assert urls(shard(TEMPLATE, 2, 4)) == ["https://h/s-2.tar", "https://h/s-6.tar"]


sizes = st.lists(st.one_of(st.none(), st.integers(0, 10**11)), min_size=0, max_size=60)


@settings(max_examples=200, deadline=None)
@given(sizes=sizes, world_size=st.integers(1, 12))
def test_any_split_is_disjoint_covering_and_in_input_order(
    sizes: list[int | None], world_size: int
) -> None:
    items = [Item(f"https://h/{i}.bin", size=size) for i, size in enumerate(sizes)]
    shares = [urls(shard(items, rank, world_size)) for rank in range(world_size)]
    every = [url for share in shares for url in share]
    assert sorted(every) == sorted(urls(items))
    assert len(every) == len(set(every))
    order = {url: i for i, url in enumerate(urls(items))}
    for share in shares:
        assert [order[u] for u in share] == sorted(order[u] for u in share)


@settings(max_examples=200, deadline=None)
@given(sizes=st.lists(st.integers(1, 10**11), min_size=1, max_size=60), world=st.integers(1, 12))
def test_any_sized_split_is_balanced_within_one_item(sizes: list[int], world: int) -> None:
    """The greedy rule's bound: the fullest rank's last item went to the then-emptiest, so no
    two ranks differ by more than the largest item (and by less whenever items are small)."""
    items = [Item(f"https://h/{i}.bin", size=size) for i, size in enumerate(sizes)]
    loads = [sum(i.size or 0 for i in shard(items, rank, world)) for rank in range(world)]
    assert sum(loads) == sum(sizes)
    assert max(loads) - min(loads) <= max(sizes)


@settings(max_examples=100, deadline=None)
@given(count=st.integers(0, 40), world=st.integers(1, 4), workers=st.integers(1, 4))
def test_every_rank_and_worker_together_fetch_each_item_once(
    count: int, world: int, workers: int
) -> None:
    items = [Item(f"https://h/{i}.bin") for i in range(count)]
    every = [
        url
        for rank in range(world)
        for worker in range(workers)
        for url in urls(worker_shard(items, rank, world, worker=worker, num_workers=workers))
    ]
    assert sorted(every) == sorted(urls(items))
    assert len(every) == count


def test_the_public_names_are_exported() -> None:
    assert resumable.worker_shard is worker_shard
