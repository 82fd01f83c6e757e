"""The runtime: what the workshop's services and trainers run (the production image copies this package only).

Data flows one way: data/ -> training (notebooks/, the Part 3 trainer, and the Part 1/2 services'
start-up, as the workshop teaches) -> the model store, through the promotion gate
(`promotion.publish`, for any model) -> services that only read it.

    paths.py          where data and models are; the settings of Parts 1-2 and the notebooks
    datasets.py       the penguins and MNIST, offline
    models/           one folder per model: mnist/ (the digit CNN), penguins/ (the scaler + KNN)
    modelkit.py       what a model folder declares: the contract between a model and the service
    registry.py       the models the project knows (app/models/, WORKSHOP_MODEL_PACKAGES)
    sklearn_models.py the declaration's training half for any scikit-learn classifier
    images.py         uploaded bytes -> 28x28 digits, or a reason to refuse them
    store.py          the versioned model store (a local folder, or S3-compatible object storage)
    storage/          the store's backends: a folder, a bucket (boto3), its lease and download cache
    promotion.py      the promotion gate: the one way a version is published, for any model
    onnx_export.py    each version's serving file (model.onnx), checked against the training library
    onnx_serving.py   a version's serving file in ONNX Runtime
    drift.py          drift tests of live requests against a version's reference
    paired_test.py    McNemar's exact test: is a candidate right more often than the serving version?
    publish_onnx.py   `python -m app.publish_onnx`: an ONNX file trained elsewhere, through the gate
    offline_docs.py   /docs and /redoc without a CDN
    encodable_errors.py  422 answers JSON can encode, whatever the refused body held (NaN, 1e999)
    part1/ part2/     the staged reference services; part3/ the production service and its trainer

The workshop's tooling (the `workshop` command, the exercise generator) is in workshop/, the
benchmark in bench/.
"""
