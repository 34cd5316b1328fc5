"""Where the trainer keeps compiled programs: the workdir's cache, or a folder the user chose."""

import os

import jax
import jax.numpy as jnp
import pytest
from jax.experimental.compilation_cache import compilation_cache as jax_cache

from trainer import compilation_cache


@pytest.fixture
def cache_setting():
    """Restores the session's cache folder (the suite shares one) after the test."""
    before = jax.config.jax_compilation_cache_dir
    yield
    jax.config.update("jax_compilation_cache_dir", before)
    jax_cache.reset_cache()


def test_each_run_gets_its_own_workdir_cache(tmp_path, cache_setting):
    jax.config.update("jax_compilation_cache_dir", None)
    first = compilation_cache.enable(str(tmp_path / "a"))
    assert first == str(tmp_path / "a" / "jax_cache")
    # A second run in the same process moves to its own workdir, not the first run's folder.
    second = compilation_cache.enable(str(tmp_path / "b"))
    assert second == str(tmp_path / "b" / "jax_cache")
    assert jax.config.jax_compilation_cache_dir == second
    # And it really writes there.
    jax.jit(lambda x: x * 3.0 + 1.0)(jnp.arange(5.0)).block_until_ready()
    assert os.listdir(second)
    assert not os.path.exists(first)


def test_a_folder_the_user_chose_is_kept(tmp_path, cache_setting):
    chosen = str(tmp_path / "shared")
    jax.config.update("jax_compilation_cache_dir", chosen)
    assert compilation_cache.enable(str(tmp_path / "run")) == chosen
    jax.jit(lambda x: x * 5.0 - 2.0)(jnp.arange(7.0)).block_until_ready()
    assert os.listdir(chosen)
    assert not os.path.exists(tmp_path / "run" / "jax_cache")
