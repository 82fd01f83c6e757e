"""One router per endpoint, named after it; main.py includes them all.

    root.py      GET /, GET /info/ (the workshop's first routes)
    predict.py   GET and POST /predict/, POST /predict/batch/
    train.py     POST /train/, /retrain/, /train/feedback/ (queued jobs)
    jobs.py      GET /jobs/, /jobs/{id}
    models.py    GET /models/, POST /models/{name}/{version}/activate
    challenger.py  POST /models/{name}/challenger/promote, .../drop (shadow scoring)
    feedback.py  POST /feedback/, /feedback/image/
    upload.py    GET /upload/ (the upload page)
    health.py    GET /health/live, /health/ready
    metrics.py   GET /metrics
    errors.py    the error answers the routes document

Each route only reads the model store, bar activate, which writes the store's ACTIVE pointer, and
the challenger's promote and drop, which write its metadata's "shadow" entry (and the pointer).
"""
