"""JAX's persistent compilation cache, kept in the run's workdir.

The attribution and sanity callbacks compile every method ahead of time, and the training and
evaluation steps compile too: seconds to tens of seconds on a CPU. With the cache, a rerun or a
resumed run of the same config loads the compiled programs from disk instead.

JAX reads the cache folder at its first compile and keeps it, so `enable` also resets JAX's
cache: `train_and_evaluate(..., compilation_cache=True)` (the command line) enables it only
once the config and data are checked and the workdir exists, so that a bad config leaves no
cache folder behind.

A cache folder chosen outside the project (`JAX_COMPILATION_CACHE_DIR`, or
`jax.config.update("jax_compilation_cache_dir", ...)`) is kept instead: runs in different
workdirs then share their compiled programs (the test suite does this).
"""

import os

import jax

CACHE_FOLDER = "jax_cache"

_chosen_here: list[str] = []  # The folders `enable` chose: not a user's choice to keep.


def enable(workdir: str) -> str:
    """Points JAX's persistent compilation cache at `workdir/jax_cache`; returns the folder used.

    A folder already chosen (`JAX_COMPILATION_CACHE_DIR`) is kept and returned.

    Every program is cached, however fast it compiled: the callbacks' many small programs
    (0.2-1 s each on CPU) add up, and JAX's default skips those under 1 s.
    """
    from jax.experimental.compilation_cache import compilation_cache

    current = jax.config.jax_compilation_cache_dir
    if current and current not in _chosen_here:
        folder = current
    else:
        folder = os.path.join(workdir, CACHE_FOLDER)
        _chosen_here.append(folder)
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    compilation_cache.reset_cache()  # Re-read at the next compile, if one ran before.
    return folder
