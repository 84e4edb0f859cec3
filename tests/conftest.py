import os

# Keras reads its backend once, at first import: the interop tests compare against Keras on torch.
os.environ["KERAS_BACKEND"] = "torch"
os.environ.setdefault("KERAS_HOME", os.path.join(os.path.dirname(__file__), ".keras-home"))

import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import settings  # noqa: E402

settings.register_profile("grukit", deadline=None, max_examples=40, derandomize=True)
settings.load_profile("grukit")

torch.set_num_threads(2)  # as many as the CI machine has


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
