"""Part 3: the production service and its trainer (see README.md here).

The API process (`fastapi run app/part3/main.py`) only reads the model store; the trainer process
(`python -m app.part3.trainer_worker`, or `uv run workshop trainer`) is its one writer.

Serving side:
    main.py            the app: routers, middleware, error handlers
    settings.py        every setting, from WORKSHOP_* variables (pydantic-settings)
    service.py         the state the routes share, start-up and the refresher
    kept_models.py     the versions a worker keeps in memory, refreshed from the store
    predictor.py       the prediction path: kept model in, answers out, for any model
    open_inference.py  the Open Inference Protocol's tensors: request bodies in, answers out
    small_uploads.py   a one-file upload read without the general multipart parser
    prediction_ids.py  signed prediction ids, so feedback can name an answer
    feedback_records.py  labelled feedback, for live accuracy: what every backend keeps and answers
    feedback_sqlite.py   its SQLite backend (and the shadow answers'), the embedded default
    feedback_redis.py    its Redis backend (and the shadow answers'), the distributed mode
    feedback_backends.py open_feedback(settings): the one the settings name
    monitoring.py      live accuracy, drift and the retrain policy
    shadow.py          shadow scoring: the challenger's labels decide whether it serves
    shadow_queue.py    copies of live requests, answered by the challenger in a thread of their own
    shadow_records.py  the challengers' answers, beside the feedback (each backend keeps its own)
    prometheus.py      the metrics and the request middleware
    body_limit.py      413 above the upload limit
    security.py        the API key of the routes that change models
    routes/            one router per endpoint
Jobs, both sides:
    job_status.py      a training job as every process sees it
    job_records.py     the jobs' records beside the queue
    training_queue.py  the queue (Huey: SQLite or Redis)
    recovery.py        settling the jobs of trainers that died
    trainer_keeper.py  the service side: starts the embedded mode's one trainer
Trainer side:
    trainer_worker.py  the trainer process: takes the queue's turns, tidies crashed saves
    training_job.py    one job: train, evaluate and publish through the gate; the first models
"""
