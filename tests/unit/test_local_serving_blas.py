"""The serving process limits BLAS to one thread (benchmarks/load.py search found OpenBLAS's pool spinning against
request threads: query embeddings 9x slower on a loaded 2-core machine). Checks the limit, not a time."""

import numpy  # noqa: F401  the BLAS library must be loaded for threadpoolctl to see it
import pytest

threadpoolctl = pytest.importorskip("threadpoolctl")

from photo_organizer.local_stack.stack import serial_blas  # noqa: E402


def test_serving_process_runs_blas_on_one_thread():
    controller = threadpoolctl.ThreadpoolController()
    blas = controller.select(user_api="blas")
    assert blas.lib_controllers, "numpy's BLAS is not visible to threadpoolctl"
    try:
        serial_blas()
        assert {info["num_threads"] for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"} == {1}
    finally:
        for lib in blas.lib_controllers:
            lib.set_num_threads(lib.num_threads)  # the values read before the limit: other tests keep theirs
