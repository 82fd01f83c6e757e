"""The model store's backends, beneath app/store.py's ModelStore (which holds what they share).

Modules:
- store_errors.py: ModelNotFound, CorruptModel, StoreUnavailable
- checksums.py: the sha256 every file is checked against before a loader opens it
- folder.py: a local folder (the default); a version is renamed into place whole
- bucket.py: S3-compatible object storage; files first, a manifest last with a conditional put, a
  compare-and-swap ACTIVE pin, and a local download cache checked by sha256
- lease.py: the training lock of a bucket, a lease object its holder renews
- s3_client.py: one boto3 client per process, and its failures as StoreUnavailable
- make_bucket.py: `python -m app.storage.make_bucket` makes the bucket WORKSHOP_MODELS_URL names (compose)
"""
