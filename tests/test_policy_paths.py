"""The LRBench policy catalogue's modules were renamed in 0.2 (lrbench -> decaying, lrbench_cyclic -> cyclic,
lrbench_restart -> restarts, apart from the lrbench/ engine); the old paths import for one release with a
DeprecationWarning, so old imports and pickles that name a policy by its old module still load."""

from __future__ import annotations

import pickle
import sys

import pytest

import lrkit


def _pickled_under(policy: lrkit.Policy, old_module: str) -> bytes:
    data = pickle.dumps(policy, protocol=0)  # protocol 0 names the class as "c<module>\n<name>\n"
    new = f"c{type(policy).__module__}\n".encode()
    assert new in data
    return data.replace(new, f"c{old_module}\n".encode())


@pytest.mark.parametrize(("spec", "old_module"), [
    ("FIX(k0=0.1)", "lrkit.policies.lrbench"),
    ("TRI(k0=0.1, k1=0.2, l=5)", "lrkit.policies.lrbench"),  # 0.1's lrbench module gave all 34
    ("TRI(k0=0.1, k1=0.2, l=5)", "lrkit.policies.lrbench_cyclic"),
    ("COSRSW2(k0=0.0, k1=1.0, l=7)", "lrkit.policies.lrbench"),
    ("COSRSW2(k0=0.0, k1=1.0, l=7)", "lrkit.policies.lrbench_restart"),
])
def test_a_pickle_naming_the_old_module_loads_with_a_deprecation_warning(spec, old_module):
    policy = lrkit.parse(spec)
    data = _pickled_under(policy, old_module)
    sys.modules.pop(old_module, None)
    with pytest.warns(DeprecationWarning, match=rf"{old_module} moved to lrkit\.policies\."):
        loaded = pickle.loads(data)
    assert loaded == policy and type(loaded) is type(policy) and loaded.values(range(20)).tolist() == policy.values(
        range(20)).tolist()


def test_old_imports_give_the_renamed_modules():
    from lrkit.policies import cyclic, decaying, restarts

    for old in ("lrkit.policies.lrbench", "lrkit.policies.lrbench_restart"):
        sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning):
        from lrkit.policies.lrbench import FIX, TRI
    assert FIX is decaying.FIX and TRI is cyclic.TRI
    with pytest.warns(DeprecationWarning):
        from lrkit.policies.lrbench_restart import RSW
    assert RSW is restarts.RSW


def test_the_catalogue_modules_are_not_named_like_the_lrbench_engine():
    from pathlib import Path

    names = {p.stem for p in (Path(lrkit.__file__).parent / "policies").glob("*.py")}
    assert not {n for n in names if n.startswith("lrbench")}
    assert {"decaying", "cyclic", "restarts"} <= names
