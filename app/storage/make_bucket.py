"""Make the bucket WORKSHOP_MODELS_URL names, if it does not exist yet (compose's `minio-bucket` runs it).

WORKSHOP_MODELS_URL=s3://models/workshop AWS_ENDPOINT_URL=http://minio:9000 python -m app.storage.make_bucket
"""

import sys

from app.paths import models_url
from app.storage.bucket import split_url
from app.storage.s3_client import error_code, reaching, s3_client
from app.storage.store_errors import StoreUnavailable

ALREADY_THERE = {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}


def make_bucket(url: str) -> bool:
    """Create the bucket of `url`; False when it was already there (StoreUnavailable on any other failure)."""
    from botocore.exceptions import ClientError

    bucket, _ = split_url(url)
    client = s3_client()
    try:
        with reaching(f"s3://{bucket}", client):
            client.head_bucket(Bucket=bucket)
        return False
    except ClientError as error:
        if error_code(error) not in ("404", "NoSuchBucket", "NotFound"):
            raise
    except StoreUnavailable as error:
        if "NoSuchBucket" not in str(error):
            raise
    try:
        with reaching(f"s3://{bucket}", client):
            client.create_bucket(Bucket=bucket)
    except StoreUnavailable as error:
        if any(code in str(error) for code in ALREADY_THERE):  # made meanwhile by someone else
            return False
        raise
    return True


def main() -> int:
    url = models_url()
    if not url:
        print("WORKSHOP_MODELS_URL is not set: there is no bucket to make", file=sys.stderr)
        return 2
    try:
        made = make_bucket(url)
    except StoreUnavailable as error:
        print(error, file=sys.stderr)
        return 1
    print(f"{url}: bucket {'made' if made else 'already there'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
