"""Model tests run tiny models: extra threads only add contention on the shared 2-core machine (and
under xdist), so every test here runs on one thread and restores the count after."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
