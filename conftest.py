"""Settings shared by the whole suite (tests/ and the notebooks nbval runs): offline data, short
trainings, and a private model store, so a test run never touches the checkout's models/."""

import os
import tempfile

# Set before anything imports Keras or an app, and inherited by the notebook kernels nbval starts.
os.environ.setdefault("WORKSHOP_MNIST_SOURCE", "bundled")
os.environ.setdefault("WORKSHOP_EPOCHS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("WORKSHOP_MODELS_DIR", tempfile.mkdtemp(prefix="workshop-models-"))
