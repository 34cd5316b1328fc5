"""JAX's persistent compilation cache, kept in the run's workdir.

The attribution and sanity callbacks compile every method ahead of time, and the training and
evaluation steps compile too: seconds to tens of seconds on a CPU. With the cache, a rerun or a
resumed run of the same config loads the compiled programs from disk instead.

JAX reads the cache folder once per process, at its first compile, and keeps it: so this is a
process-level setting, made by the command line before anything compiles, not by
`train_and_evaluate` (a process may train several workdirs).
"""

import os

import jax

CACHE_FOLDER = "jax_cache"


def enable(workdir: str) -> str:
    """Points JAX's persistent compilation cache at `workdir/jax_cache`; returns that folder.

    Every program is cached, however fast it compiled: the callbacks' many small programs
    (0.2-1 s each on CPU) add up, and JAX's default skips those under 1 s.
    """
    folder = os.path.join(workdir, CACHE_FOLDER)
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return folder
