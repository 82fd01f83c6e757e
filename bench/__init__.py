"""The benchmark: the service against its floor and against the workshop's own code.

    uv run python -m bench            # everything; prints the table and writes bench/RESULTS.md
    uv run python -m bench --quick    # a tiny configuration (the test suite runs it)

Every server runs as a real process on 127.0.0.1 (uvicorn, one worker) and the load comes from
another process (wrk when installed, else bench/client.py). These machines are shared and noisy,
so every figure printed is a ratio between two measurements of the same run.

    run.py             the measurements, section by section
    servers.py         a server as a real process: start, wait until it answers, stop
    load.py, client.py the load (wrk, or the keep-alive Python client)
    prepare_models.py  trains the store every server reads, and times the models in-process
    batching.py        micro-batching, for the kept_digits reference app
    report.py          the table and bench/RESULTS.md
    store_backends.py  the model store's own costs, local folder against S3 (`python -m bench.store_backends`)
    apps/              the floors and the workshop's own code, as servers
"""
