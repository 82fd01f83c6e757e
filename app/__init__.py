"""The runtime: what the workshop's services and trainers run (the production image copies this package only).

Data flows one way: data/ -> training (notebooks/, the Part 3 trainer, and the Part 1/2 services'
start-up, as the workshop teaches) -> the model store, through one publishing function per model
(`mnist.publish`, `penguins.publish`, both through the promotion gate) -> services that only read it.

    paths.py        where data and models are; the settings of Parts 1-2 and the notebooks
    datasets.py     the penguins and MNIST, offline
    penguins/       the penguin model (train, evaluate, publish, a fast predictor), its API contract, units
    mnist.py        the digit CNN (train, evaluate, publish)
    images.py       uploaded bytes -> 28x28 digits, or a reason to refuse them
    store.py        the versioned model store (a local folder, or S3-compatible object storage)
    storage/        the store's backends: a folder, a bucket (boto3), its lease and download cache
    promotion.py    the promotion gate every publication passes
    onnx_export.py  each version's serving file (model.onnx), checked against the training library
    drift.py        drift tests of live requests against a version's reference
    digit_styles.py digits drawn unlike MNIST's, to show drift
    offline_docs.py /docs and /redoc without a CDN
    encodable_errors.py  422 answers JSON can encode, whatever the refused body held (NaN, 1e999)
    part1/ part2/   the staged reference services; part3/ the production service and its trainer

The workshop's tooling (the `workshop` command, the exercise generator) is in workshop/, the
benchmark in bench/.
"""
